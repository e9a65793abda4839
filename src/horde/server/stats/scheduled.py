"""The statistics domain's periodic task: fold completion events into the buckets (ADR 0021)."""

from __future__ import annotations

from horde.server.state import Horde
from horde.server.stats.writes import fold


async def fold_stat_events(horde: Horde) -> int:
    """Fold until nothing is left (bounded batches, one transaction each)."""
    total = 0
    for _ in range(20):
        async with horde.db.transaction() as conn:
            folded = await fold(conn, now=horde.clock.now())
        total += folded
        if not folded:
            break
    return total
