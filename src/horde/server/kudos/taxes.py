"""The activation tax (SEMANTICS.md 4.4): charged when a request is queued, never refunded.

`activation_legs` is the one place that knows the tax and the style owner's share; the styles domain
sets `NewRequest.style_owner_id` and `jobs.requests` charges these legs when the request is stored
(ADR 0023). The anonymous user's part is paid by the floor account, as every anonymous charge is.
"""

from __future__ import annotations

from horde.server.kudos.pricing import hundredths
from horde.server.kudos.service import Leg

ACTIVATION_TAX = 1.0
EXTRA_SOURCE_TAX = 5.0  # per extra source image
STYLE_SHARE = 2.0  # to the owner of a style someone else uses (the reference's STYLE_REWARD)


def activation_tax(*, extra_source_images: int, styled: bool) -> float:
    """What queueing a request costs before any job is done: 1, +5 per extra source image, +2 for a
    style someone else owns. Deviation: the reference charges image requests the +2 without a style
    too (a None-vs-False check); we do not (ADR 0023)."""
    return ACTIVATION_TAX + EXTRA_SOURCE_TAX * max(extra_source_images, 0) + (STYLE_SHARE if styled else 0.0)


def activation_legs(
    *, payer_id: int, extra_source_images: int = 0, style_owner_id: int | None = None
) -> list[Leg]:
    """The postings of a request's activation: the payer's debit, the style owner's share (when the
    style is someone else's) and the horde's part. For the styles domain to reuse (ADR 0023)."""
    styled = style_owner_id is not None and style_owner_id != payer_id
    total = hundredths(activation_tax(extra_source_images=extra_source_images, styled=styled))
    legs = [Leg(amount=-total, user_id=payer_id)]
    if styled:
        share = hundredths(STYLE_SHARE)
        legs.append(Leg(amount=share, user_id=style_owner_id))
        total -= share
    legs.append(Leg(amount=total, system="horde"))
    return legs
