"""The users domain's periodic task: fold record events into the users' records (ADR 0022)."""

from __future__ import annotations

from horde.server.state import Horde
from horde.server.users.records import fold


async def fold_user_records(horde: Horde) -> int:
    """Fold until nothing is left (bounded batches, one transaction each)."""
    total = 0
    for _ in range(20):
        async with horde.db.transaction() as conn:
            folded = await fold(conn)
        total += folded
        if not folded:
            break
    return total
