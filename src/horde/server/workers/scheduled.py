"""The workers domain's periodic task: fold check-ins into uptime and pay its rewards (ADR 0023)."""

from __future__ import annotations

from horde.server.state import Horde
from horde.server.workers.uptime import fold


async def fold_uptime(horde: Horde) -> int:
    """Fold until nothing is left (bounded batches, one transaction each)."""
    total = 0
    for _ in range(20):
        async with horde.db.transaction() as conn:
            folded = await fold(conn, now=horde.clock.now())
        total += folded
        if not folded:
            break
    return total
