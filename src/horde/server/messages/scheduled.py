"""The messages domain's periodic task: delete messages long expired."""

from __future__ import annotations

from horde.server.messages.service import prune_messages
from horde.server.state import Horde


async def prune_expired_messages(horde: Horde) -> int:
    """Delete messages expired more than the retention ago (one transaction)."""
    async with horde.db.transaction() as conn:
        return await prune_messages(conn, now=horde.clock.now())
