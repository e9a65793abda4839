"""The shared keys domain's periodic task: fold charges into the keys' `utilized` (ADR 0021)."""

from __future__ import annotations

from horde.server.sharedkeys.spending import fold_charges
from horde.server.state import Horde


async def fold_shared_key_charges(horde: Horde) -> int:
    """Fold until nothing is left (bounded batches, one transaction each)."""
    total = 0
    for _ in range(20):
        async with horde.db.transaction() as conn:
            folded = await fold_charges(conn)
        total += folded
        if not folded:
            break
    return total
