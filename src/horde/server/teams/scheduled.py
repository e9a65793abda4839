"""The teams domain's periodic task: fold attribution events into the teams' figures (ADR 0016)."""

from __future__ import annotations

from horde.server.state import Horde
from horde.server.teams.writes import fold


async def fold_team_events(horde: Horde) -> int:
    """Fold until nothing is left (bounded batches, one transaction each)."""
    total = 0
    for _ in range(20):
        async with horde.db.transaction() as conn:
            folded = await fold(conn)
        total += folded
        if not folded:
            break
    if total:
        horde.answers.forget("teams")  # their totals moved: on every node (ADR 0026)
    return total
