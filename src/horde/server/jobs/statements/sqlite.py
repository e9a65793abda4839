"""The job lifecycle on SQLite: the same writes as Core statements inside one transaction each.

SQLite has one writer: every transaction begins with `BEGIN IMMEDIATE` (db.py), so a transaction's
checks and writes are never interleaved with another's and no per-user lock is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Float, Text, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.jobs.models import JobState, RequestWorker
from horde.server.jobs.statements.base import (
    Completion,
    JobStatements,
    NewRow,
    Queued,
    job_values,
    jobs,
    priority_key,
    request_models,
    request_values,
    requests,
    workers,
)
from horde.server.jobs.statements.counts import queued_jobs_of_user
from horde.server.kit.orm import table
from horde.server.kit.sql import Fast
from horde.server.kudos import service as kudos
from horde.server.stats.writes import COMPLETED_STAT, completed_stat_values
from horde.server.teams.writes import ATTRIBUTED, attributed_values
from horde.server.users.records import RECORDED
from horde.server.webhooks.service import enqueue
from horde.server.workers.writes import COMPLETED

request_workers = table(RequestWorker)

_DONE = (
    update(jobs)
    .where(
        jobs.c.id == bindparam("jid"),
        jobs.c.state == JobState.PROCESSING,
        jobs.c.worker_id == bindparam("wid"),
    )
    .values(
        state=JobState.DONE,
        finished_at=bindparam("now", type_=Float),
        cost=bindparam("burn", type_=BigInteger),
        result=bindparam("out", type_=Text),
        result_meta=bindparam("meta", type_=jobs.c.result_meta.type),
        reward=bindparam("paid", type_=BigInteger),
    )
)


class SqliteStatements(JobStatements):
    async def rows(
        self, conn: AsyncConnection, statement: Fast, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        result = await conn.execute(statement.statement, dict(params))
        return [dict(row._mapping) for row in result]

    async def complete(self, c: Completion) -> bool:
        async with self.db.transaction() as conn:
            won = await conn.execute(
                _DONE,
                {"jid": c.job_id, "wid": c.worker_id, "now": c.now, "burn": c.burn, "out": c.result,
                 "meta": c.meta, "paid": c.reward},
            )  # fmt: skip
            if won.rowcount != 1:
                return False
            await kudos.post(conn, legs=c.legs, reason="generation", ref=str(c.job_id), now=c.now)
            if c.hold_ref is not None:
                await kudos.settle_hold(conn, ref=c.hold_ref, charged=c.burn)
            await conn.execute(
                COMPLETED, {"wid": c.worker_id, "paid": c.reward, "things": c.things, "sample": c.sample}
            )
            await conn.execute(
                COMPLETED_STAT, {"things": c.things, **completed_stat_values(c.kind, c.model, c.now)}
            )
            if c.records is not None:
                await conn.execute(RECORDED, {"things": c.things, **c.records})
            if c.team_id is not None:
                values = {"paid": c.reward, "things": c.things, **attributed_values(c.team_id, c.now)}
                await conn.execute(ATTRIBUTED, values)
            if c.hook is not None:
                await enqueue(conn, url=c.hook.url, body=c.hook.body, now=c.now)
        return True

    async def queue_request(self, row: NewRow) -> Queued:
        new = row.new
        async with self.db.transaction() as conn:
            if new.worker_ids:
                found = set(
                    (await conn.scalars(select(workers.c.id).where(workers.c.id.in_(new.worker_ids)))).all()
                )
                for worker_id in new.worker_ids:
                    if worker_id not in found:
                        return Queued(stored=False, missing_worker=worker_id)
            queued = await queued_jobs_of_user(
                conn, user_id=row.user_id, kind=new.kind, models=row.count_models
            )
            if queued + len(new.jobs) > row.limit:
                return Queued(stored=False, queued=queued)
            if row.hold and not await kudos.take_hold(
                conn, ref=kudos.hold_ref(new.id), user_id=row.user_id, amount=row.hold, floor=row.floor,
                now=row.now,
            ):  # fmt: skip
                return Queued(stored=False, short=True)
            priority = priority_key(await kudos.balance_of(conn, row.user_id), row.now)
            await conn.execute(insert(requests), request_values(row, priority=priority))
            if new.models:
                await conn.execute(
                    insert(request_models), [{"request_id": new.id, "model": m} for m in new.models]
                )
            if new.worker_ids:
                targets = [{"request_id": new.id, "worker_id": w} for w in dict.fromkeys(new.worker_ids)]
                await conn.execute(insert(request_workers), targets)
            await conn.execute(insert(jobs), job_values(row, priority=priority))
        return Queued(stored=True)
