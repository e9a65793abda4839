"""User records (SEMANTICS.md 1.5 `records`, 5 `user_records`) as insert-only events folded by a
scheduled task into a read model (ADR 0022, the team events' pattern of ADR 0016): no completion
updates a user row, which every job of a busy requester or worker owner would share.

`RECORDED` (Core, SQLite's completion) and `recorded_sql` (a CTE body of PostgreSQL's one-statement
completion) are the same insert; their parameters: `rkind`, `requester`, `owner`, `things`, `rec_at`.
The requester's usage is scaled by its `usage_multiplier` when folded (statistics only, SEMANTICS 4.4).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Float, Integer, String, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.kit.orm import UTCDateTime, table, utc
from horde.server.kit.sql import Params
from horde.server.users.models import User, UserRecord, UserRecordEvent

users = table(User)
events = table(UserRecordEvent)
records = table(UserRecord)

RECORDED = insert(events).values(
    kind=bindparam("rkind", type_=String),
    requester_id=bindparam("requester", type_=Integer),
    owner_id=bindparam("owner", type_=Integer),
    things=bindparam("things", type_=Float),
    created_at=bindparam("rec_at", type_=UTCDateTime()),
)


def recorded_sql(p: Params, *, after: str) -> str:
    """PostgreSQL: `RECORDED` as a CTE body, inserted only when the CTE `after` returned a row."""
    return f"""INSERT INTO user_record_events (kind, requester_id, owner_id, things, created_at)
    SELECT {p("rkind")}::varchar, {p("requester")}::integer, {p("owner")}::integer, {p("things")}::float8,
        {p("rec_at")}::timestamptz
    FROM {after}
    RETURNING 1"""  # noqa: S608 (names and placeholders only: values are bound)


def recorded_values(*, kind: str, requester_id: int, owner_id: int, now: float) -> dict[str, object]:
    """The parameters of `RECORDED` / `recorded_sql` (the job's `things` aside)."""
    return {"rkind": kind, "requester": requester_id, "owner": owner_id, "rec_at": utc(now)}


# per (user, kind): usage (unscaled), requests, contribution, fulfilments
Sums = defaultdict[tuple[int, str], list[float]]


def _sum(taken: Any) -> tuple[Sums, dict[int, Any], int]:
    sums: Sums = defaultdict(lambda: [0.0, 0, 0.0, 0])
    last_seen: dict[int, Any] = {}
    count = 0
    for kind, requester, owner, things, created_at in taken:
        mine = sums[(requester, kind)]
        mine[0] += things
        mine[1] += 1
        theirs = sums[(owner, kind)]
        theirs[2] += things
        theirs[3] += 1
        for user_id in (requester, owner):
            last_seen[user_id] = max(last_seen.get(user_id, created_at), created_at)
        count += 1
    return sums, last_seen, count


async def fold(conn: AsyncConnection, *, limit: int = 5000) -> int:
    """Take up to `limit` events (oldest first), add them to their users' records and delete them; the
    users' `last_active` follows their newest folded event (DELETE /users reads it)."""
    oldest = select(events.c.id).order_by(events.c.id).limit(limit).with_for_update(skip_locked=True)
    taken = await conn.execute(
        delete(events)
        .where(events.c.id.in_(oldest.scalar_subquery()))
        .returning(
            events.c.kind, events.c.requester_id, events.c.owner_id, events.c.things, events.c.created_at
        )
    )
    sums, last_seen, count = _sum(taken.all())
    if not count:
        return 0
    known = dict(
        (
            await conn.execute(select(users.c.id, users.c.usage_multiplier).where(users.c.id.in_(last_seen)))
        ).all()
    )
    for (user_id, kind), (usage, requests, contribution, fulfilments) in sorted(sums.items()):
        if user_id in known:  # a user wiped meanwhile: its events fold into nothing
            scaled = usage * float(known[user_id] or 1.0)
            await _add(conn, user_id, kind, [scaled, int(requests), contribution, int(fulfilments)])
    for user_id, seen in sorted(last_seen.items()):
        await conn.execute(
            update(users).where(users.c.id == user_id, users.c.last_active < seen).values(last_active=seen)
        )
    return count


async def _add(conn: AsyncConnection, user_id: int, kind: str, add: list[float]) -> None:
    # the fold is the only writer (one folder at a time, under the scheduler's lock): update or insert
    usage, requests, contribution, fulfilments = add
    done = await conn.execute(
        update(records)
        .where(records.c.user_id == user_id, records.c.kind == kind)
        .values(
            usage=records.c.usage + usage,
            requests=records.c.requests + int(requests),
            contribution=records.c.contribution + contribution,
            fulfilments=records.c.fulfilments + int(fulfilments),
        )
    )
    if not done.rowcount:
        await conn.execute(
            insert(records).values(
                user_id=user_id, kind=kind, usage=usage, requests=int(requests), contribution=contribution,
                fulfilments=int(fulfilments),
            )
        )  # fmt: skip


async def records_of(conn: AsyncConnection, user_id: int) -> dict[str, tuple[float, int, float, int]]:
    """A user's folded records per kind: (usage, requests, contribution, fulfilments)."""
    rows = await conn.execute(
        select(
            records.c.kind, records.c.usage, records.c.requests, records.c.contribution, records.c.fulfilments
        ).where(records.c.user_id == user_id)
    )
    return {row.kind: (row.usage, row.requests, row.contribution, row.fulfilments) for row in rows}
