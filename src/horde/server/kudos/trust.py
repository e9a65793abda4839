"""Trust promotion and the release of escrow (SEMANTICS.md 4.5; ADR 0023).

An untrusted owner whose escrow (`evaluating_kudos`) exceeds `kudos_trust_threshold` (unset: never),
whose account is at least `trust_min_account_days` old and who is not suspicious becomes trusted: the
workers are unpaused and the escrow moves to the balance in one event. A trusted owner's escrow (left
over from before the promotion, or from before a moderator made them trusted) is released the same way.
One scheduled run does it for every user due; a rerun finds nothing more to move.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.kudos import service as kudos
from horde.server.kudos.pricing import hundredths
from horde.server.kudos.service import Leg, balances, users
from horde.server.users import service as users_service
from horde.server.workers import writes as worker_writes

SUSPICIOUS = 5
DAY = 86400.0


async def promote_and_release(
    conn: AsyncConnection, *, threshold: float | None, min_age_days: float, now: float
) -> int:
    """Promote the untrusted owners due and release trusted owners' escrow; the users moved."""
    rows = (
        await conn.execute(
            select(users.c.id, users.c.trusted, users.c.moderator, users.c.created_at)
            .join(balances, balances.c.user_id == users.c.id)
            .where(balances.c.escrow > 0)
        )
    ).all()
    moved = 0
    for user_id, trusted, moderator, created_at in rows:
        escrow = await kudos.escrow_of(conn, user_id)
        if escrow <= 0:
            continue
        if not (trusted or moderator):
            old_enough = created_at.timestamp() <= now - min_age_days * DAY
            if threshold is None or escrow <= hundredths(threshold) or not old_enough:
                continue
            if await users_service.suspicion_of(conn, user_id) >= SUSPICIOUS:
                continue
            await users_service.make_trusted(conn, user_id=user_id)
            await conn.execute(worker_writes.unpause_owned(user_id))
        legs = [Leg(amount=-escrow, user_id=user_id, escrow=True), Leg(amount=escrow, user_id=user_id)]
        await kudos.post(conn, legs=legs, reason="promotion", now=now)
        moved += 1
    return moved


__all__ = ["promote_and_release"]
