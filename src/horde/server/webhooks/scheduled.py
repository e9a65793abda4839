"""Retry due webhook deliveries that the in-process sender has not sent (after a crash, say)."""

from __future__ import annotations

from sqlalchemy import delete, or_

from horde.server.kit.orm import utc
from horde.server.state import Horde
from horde.server.webhooks.service import deliver_due, deliveries


async def deliver_webhooks(horde: Horde) -> int:
    return await deliver_due(horde)


async def prune_webhooks(horde: Horde) -> int:
    """Forget deliveries that ended (sent or given up) more than the result retention ago."""
    cutoff = utc(horde.clock.now() - horde.settings.result_retention)
    async with horde.db.autocommit() as conn:
        result = await conn.execute(
            delete(deliveries).where(
                deliveries.c.next_attempt_at < cutoff,
                or_(deliveries.c.delivered_at.is_not(None), deliveries.c.failed.is_(True)),
            )
        )
    return int(result.rowcount or 0)
