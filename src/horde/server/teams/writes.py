"""What settlement and uptime add to a team, as insert-only events, and the fold that sums them into
the team's figures (ADR 0016): no completion updates a team row, which every worker of the team shares.

`ATTRIBUTED` (Core, SQLite's completion) and `attributed_sql` (a CTE body of PostgreSQL's one-statement
completion) are the same insert; their parameters: `team`, `paid` (hundredths), `things`, `team_at`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import BigInteger, Float, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.kit.orm import UTCDateTime, table, utc
from horde.server.kit.sql import Params
from horde.server.teams.models import Team, TeamEvent

teams = table(Team)
events = table(TeamEvent)

ATTRIBUTED = insert(events).values(
    team_id=bindparam("team"),
    kudos=bindparam("paid", type_=BigInteger),
    contributions=bindparam("things", type_=Float),
    fulfilments=1,
    uptime=0,
    created_at=bindparam("team_at", type_=UTCDateTime()),
)


def attributed_sql(p: Params, *, after: str) -> str:
    """PostgreSQL: `ATTRIBUTED` as a CTE body, inserted only when the CTE `after` returned a row."""
    return f"""INSERT INTO team_events (team_id, kudos, contributions, fulfilments, uptime, created_at)
    SELECT {p("team")}::uuid, {p("paid")}, {p("things")}, 1, 0, {p("team_at")}::timestamptz FROM {after}
    RETURNING 1"""  # noqa: S608 (names and placeholders only: values are bound)


def attributed_values(team_id: uuid.UUID, now: float) -> dict[str, object]:
    """The team's own parameters of `ATTRIBUTED` / `attributed_sql` (the job's `paid`, `things` aside)."""
    return {"team": team_id, "team_at": utc(now)}


async def add_uptime(conn: AsyncConnection, *, team_id: uuid.UUID, seconds: int, now: float) -> None:
    """Credit a team with a worker's uptime (any kind, SEMANTICS.md 1.6)."""
    await conn.execute(
        insert(events).values(
            team_id=team_id, kudos=0, contributions=0.0, fulfilments=0, uptime=seconds, created_at=utc(now)
        )
    )


async def fold(conn: AsyncConnection, *, limit: int = 5000) -> int:
    """Take up to `limit` events (oldest first), add them to their teams and delete them."""
    oldest = select(events.c.id).order_by(events.c.id).limit(limit).with_for_update(skip_locked=True)
    taken = await conn.execute(
        delete(events)
        .where(events.c.id.in_(oldest.scalar_subquery()))
        .returning(
            events.c.team_id, events.c.kudos, events.c.contributions, events.c.fulfilments, events.c.uptime
        )
    )
    sums: defaultdict[uuid.UUID, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0])
    count = 0
    for team_id, kudos, contributions, fulfilments, uptime in taken:
        total = sums[team_id]
        total[0] += kudos
        total[1] += contributions
        total[2] += fulfilments
        total[3] += uptime
        count += 1
    for team_id, (kudos, contributions, fulfilments, uptime) in sorted(sums.items()):
        await conn.execute(  # a team deleted meanwhile matches no row: its events fold into nothing
            update(teams)
            .where(teams.c.id == team_id)
            .values(
                kudos=teams.c.kudos + int(kudos),
                contributions=teams.c.contributions + contributions,
                fulfilments=teams.c.fulfilments + int(fulfilments),
                uptime=teams.c.uptime + int(uptime),
            )
        )
    return count
