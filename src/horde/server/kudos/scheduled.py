"""The kudos domain's periodic tasks: fold new postings into the balances (one folder at a time) and pay
the monthly kudos."""

from __future__ import annotations

from horde.server.kudos import monthly, trust
from horde.server.kudos.service import fold
from horde.server.state import Horde


async def fold_postings(horde: Horde) -> int:
    """Fold until nothing is left (bounded batches, one transaction each)."""
    total = 0
    for _ in range(20):
        async with horde.db.transaction() as conn:
            folded = await fold(conn, now=horde.clock.now())
        total += folded
        if not folded:
            break
    return total


async def promote_trusted(horde: Horde) -> int:
    """Promote the untrusted owners whose escrow passed the threshold; release trusted owners' escrow."""
    s = horde.settings
    async with horde.db.transaction() as conn:
        moved = await trust.promote_and_release(
            conn, threshold=s.kudos_trust_threshold, min_age_days=s.trust_min_account_days,
            now=horde.clock.now(),
        )  # fmt: skip
    if moved:
        horde.users.forget_all()  # this node's principals learn the new role now, others at their expiry
    return moved


async def pay_monthly(horde: Horde) -> int:
    """Pay the monthly kudos that are due (one month per user and run; the next run catches up)."""
    async with horde.db.unit() as conn:
        return await monthly.pay_monthly_kudos(conn, now=horde.clock.now())
