"""The kudos domain's periodic task: fold new postings into the balances (one folder at a time)."""

from __future__ import annotations

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
