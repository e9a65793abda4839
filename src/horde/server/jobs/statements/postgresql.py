"""The job lifecycle on PostgreSQL: hot statements straight to asyncpg, each write one statement.

- `rows` sends a prebuilt statement to the driver on an autocommit connection (ADR 0008).
- `complete` is one writable CTE: the job's compare-and-set, then, only if it won, the ledger
  postings (`kudos.postings_sql`), the worker's figures (`workers.writes.completed_sql`), the
  statistics event (`stats.writes.completed_stat_sql`), the team's event (`teams.writes.attributed_sql`,
  only for a worker in a team), the users' record event (`users.records.recorded_sql`) and the
  webhook's outbox row
  (`webhooks.outbox_sql`): atomic, one round trip, no BEGIN/COMMIT.
- `queue_request` is one call of `horde_queue_request` (migration 2026_12_03): it takes the owner's
  advisory lock first, so its count sees every request committed before it (each statement in a
  volatile function takes a new snapshot), then checks, prices the queue key and inserts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.jobs.statements.base import (
    Completion,
    JobStatements,
    NewRow,
    Queued,
    job_values,
    request_values,
)
from horde.server.kit.sql import Fast, Params, autocommit, plain, using_driver
from horde.server.kudos.service import hold_settle_sql, postings_sql, postings_values
from horde.server.stats.writes import completed_stat_sql, completed_stat_values
from horde.server.teams.writes import attributed_sql, attributed_values
from horde.server.users.records import recorded_sql
from horde.server.webhooks.service import outbox_sql, outbox_values
from horde.server.workers.writes import completed_sql


def _completion(with_hook: bool, with_team: bool, with_hold: bool) -> tuple[str, Params]:
    p = Params()
    sql = f"""WITH done AS (
    UPDATE jobs SET state = 'done', finished_at = {p("now")}, cost = {p("burn")}, result = {p("result")},
        result_meta = {p("meta")}::jsonb, reward = {p("paid")}
    WHERE id = {p("jid")} AND state = 'processing' AND worker_id = {p("wid")}
    RETURNING id
), paid AS (
    {postings_sql(p, after="done")}
), stats AS (
    {completed_sql(p, after="done")}
), stat AS (
    {completed_stat_sql(p, after="done")}
), recorded AS (
    {recorded_sql(p, after="done")}
)"""  # noqa: S608 (names and placeholders only: values are bound)
    if with_hook:
        sql += f""", hook AS (
    {outbox_sql(p, after="done")}
)"""
    if with_team:
        sql += f""", team AS (
    {attributed_sql(p, after="done")}
)"""
    if with_hold:
        sql += f""", held AS (
    {hold_settle_sql(p, after="done")}
)"""
    return sql + "\nSELECT count(*) FROM done", p


_COMPLETE = {
    (hook, team, hold): _completion(hook, team, hold)
    for hook in (False, True)
    for team in (False, True)
    for hold in (False, True)
}
_QUEUE = (
    "SELECT stored, queued, missing, short FROM horde_queue_request("
    "$1::jsonb, $2::varchar[], $3::uuid[], $4::jsonb, $5, $6::varchar[], $7::bigint, $8::bigint)"
)


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


class PostgresStatements(JobStatements):
    async def rows(
        self, conn: AsyncConnection, statement: Fast, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        if not autocommit(conn):  # inside a transaction SQLAlchemy began: its own path
            result = await conn.execute(statement.statement, dict(params))
            return [dict(row._mapping) for row in result]
        sql, names, own = statement.compiled_for(conn.dialect)
        async with using_driver(conn) as driver:
            records = await driver.fetch(sql, *[params[n] if n in params else own[n] for n in names])
        return [plain(record) for record in records]

    async def complete(self, c: Completion) -> bool:
        sql, p = _COMPLETE[c.hook is not None, c.team_id is not None, c.hold_ref is not None]
        values: dict[str, Any] = {
            "jid": c.job_id, "wid": c.worker_id, "now": c.now, "burn": c.burn, "result": c.result,
            "meta": json.dumps(c.meta) if c.meta is not None else None, "paid": c.reward,
            "things": c.things, "sample": c.sample,
            **postings_values(c.legs, reason="generation", ref=str(c.job_id), now=c.now),
            **completed_stat_values(c.kind, c.model, c.now),
        }  # fmt: skip
        values.update(c.records or {})
        if c.hook is not None:
            values.update(outbox_values(url=c.hook.url, body=c.hook.body, now=c.now))
        if c.team_id is not None:
            values.update(attributed_values(c.team_id, c.now))
        if c.hold_ref is not None:
            values["hold_ref"] = c.hold_ref
        async with self.db.autocommit() as conn, using_driver(conn) as driver:
            won = await driver.fetchval(sql, *p.values(values))
        return bool(won == 1)

    async def queue_request(self, row: NewRow) -> Queued:
        new = row.new
        request = request_values(row, priority=0.0)  # the function sets the priority from the balance
        jobs = job_values(row, priority=0.0)
        args = (
            _json(request),
            list(new.models),
            list(dict.fromkeys(new.worker_ids)),
            _json(jobs),
            row.limit,
            row.count_models,
            row.hold,
            row.floor,
        )
        async with self.db.autocommit() as conn, using_driver(conn) as driver:
            found = await driver.fetchrow(_QUEUE, *args)
        missing = found["missing"]
        return Queued(
            stored=bool(found["stored"]), queued=int(found["queued"] or 0),
            missing_worker=uuid.UUID(str(missing)) if missing is not None else None,
            short=bool(found["short"]),
        )  # fmt: skip
