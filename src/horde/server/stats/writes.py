"""What a completion adds to the statistics, as an insert-only event, and the fold that sums events
into minute, hour and day buckets and all-time totals (ADR 0021).

`COMPLETED_STAT` (Core, SQLite's completion) and `completed_stat_sql` (a CTE body of PostgreSQL's
one-statement completion) are the same insert; their parameters: `stat_kind`, `stat_model`, `things`,
`stat_at`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Float, String, bindparam, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.kit.orm import UTCDateTime, table, utc
from horde.server.kit.sql import Params
from horde.server.stats.models import StatBucket, StatEvent, StatTotal

events = table(StatEvent)
buckets = table(StatBucket)
totals = table(StatTotal)

MINUTE, HOUR, DAY = 60, 3600, 86400
GRAINS = (MINUTE, HOUR, DAY)
# how long a bucket of each grain is kept: as long as the longest window read from it (stats/service.py)
KEEP = {MINUTE: HOUR + MINUTE, HOUR: DAY + HOUR, DAY: 31 * DAY}

COMPLETED_STAT = insert(events).values(
    kind=bindparam("stat_kind", type_=String),
    model=bindparam("stat_model", type_=String),
    things=bindparam("things", type_=Float),
    created_at=bindparam("stat_at", type_=UTCDateTime()),
)


def completed_stat_sql(p: Params, *, after: str) -> str:
    """PostgreSQL: `COMPLETED_STAT` as a CTE body, inserted only when the CTE `after` returned a row."""
    return f"""INSERT INTO stat_events (kind, model, things, created_at)
    SELECT {p("stat_kind")}::varchar, {p("stat_model")}::varchar, {p("things")}::float8,
        {p("stat_at")}::timestamptz FROM {after}
    RETURNING 1"""  # noqa: S608 (names and placeholders only: values are bound)


def completed_stat_values(kind: str, model: str | None, now: float) -> dict[str, object]:
    """The event's own parameters of `COMPLETED_STAT` / `completed_stat_sql` (`things` is the job's)."""
    return {"stat_kind": kind, "stat_model": model or "", "stat_at": utc(now)}


def _upsert(conn: AsyncConnection, model: Any) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(model)


async def _add(conn: AsyncConnection, model: Any, keys: dict[str, Any], count: int, things: float) -> None:
    statement = _upsert(conn, model).values(**keys, count=count, things=things)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={"count": model.c.count + count, "things": model.c.things + things},
        )
    )


async def fold(conn: AsyncConnection, *, now: float, limit: int = 5000) -> int:
    """Take up to `limit` events (oldest first), add them to their buckets and totals, delete them,
    and prune the buckets no window reaches any more."""
    oldest = select(events.c.id).order_by(events.c.id).limit(limit).with_for_update(skip_locked=True)
    taken = await conn.execute(
        delete(events)
        .where(events.c.id.in_(oldest.scalar_subquery()))
        .returning(events.c.kind, events.c.model, events.c.things, events.c.created_at)
    )
    sums: defaultdict[tuple[str, str, int, int], list[float]] = defaultdict(lambda: [0, 0.0])
    count = 0
    for kind, model, things, created_at in taken:
        at = int(created_at.timestamp())
        for grain in (*GRAINS, 0):  # grain 0: the all-time total
            total = sums[kind, model, grain, at - at % grain if grain else 0]
            total[0] += 1
            total[1] += things
        count += 1
    for (kind, model, grain, start), (jobs, things) in sorted(sums.items()):
        if grain:
            keys = {"kind": kind, "model": model, "grain": grain, "start": start}
            await _add(conn, buckets, keys, int(jobs), things)
        else:
            await _add(conn, totals, {"kind": kind, "model": model}, int(jobs), things)
    for grain, keep in KEEP.items():
        await conn.execute(delete(buckets).where(buckets.c.grain == grain, buckets.c.start < now - keep))
    return count
