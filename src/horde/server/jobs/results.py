"""Submitting results and faults: the second half of a job's lease.

Invariants: a result is accepted only by the compare-and-set `state = 'processing' AND worker_id = ..`
(so a double, late, unknown or foreign submit changes nothing); every payment goes through
`kudos.service.post` in the same transaction; a faulted job is kept and replaced by a fresh queued row
until the request reaches its fault limit (ADR 0001).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Float, Text, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.jobs import store
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.kinds.base import RequestRow, SubmitOutcome
from horde.server.jobs.models import JobState, RequestState
from horde.server.kit.orm import table, utc
from horde.server.kit.sql import Fast, driver_connection
from horde.server.kudos import pricing
from horde.server.kudos import service as kudos
from horde.server.state import Horde
from horde.server.users.principal import Principal
from horde.server.webhooks import service as webhooks
from horde.server.workers.models import Worker

jobs = store.jobs
requests = store.requests
workers_t = table(Worker)


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise HordeError(RC.InvalidJobID, "Processing Generation with ID not found") from None


def _diagnose(
    job: dict[str, Any] | None, worker: dict[str, Any] | None, user: Principal, faulting: bool
) -> None:
    """Raise the reference's error for a job that cannot take this submit."""
    if job is None or worker is None:
        raise HordeError(RC.InvalidJobID, "Processing Generation with ID not found")
    if worker["user_id"] != user.id:
        raise HordeError(RC.WrongCredentials, "Wrong credentials to submit as this worker")
    if job["state"] == JobState.DONE:
        raise HordeError(RC.DuplicateGen, "Processing Generation has already been submitted")
    if job["state"] in (JobState.FAULTED, JobState.CANCELLED) and not faulting:
        raise HordeError(RC.AbortedGen, "Processing Generation has been aborted or timed out")


_WORKER_COLUMNS = ("id", "user_id", "name", "bridge_agent", "kind")
# The submit path's statements are built once, with bind parameters (building one costs more than
# running it, see ADR 0006).
_LOAD = Fast(
    select(jobs, *[workers_t.c[name].label(f"w__{name}") for name in _WORKER_COLUMNS])
    .outerjoin(workers_t, workers_t.c.id == jobs.c.worker_id)
    .where(jobs.c.id == bindparam("jid"))
)
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
_WORKER_STATS = (
    update(workers_t)
    .where(workers_t.c.id == bindparam("wid"))
    .values(
        fulfilments=workers_t.c.fulfilments + 1,
        kudos_generated=workers_t.c.kudos_generated + bindparam("paid", type_=BigInteger),
        things=workers_t.c.things + bindparam("add_things", type_=Float),
        speed=workers_t.c.speed * 0.9 + bindparam("sample", type_=Float) * 0.1,
    )
)


async def _load(
    conn: AsyncConnection, job_id: uuid.UUID
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The job and the worker holding it, in one query."""
    rows = await _LOAD.rows(conn, {"jid": job_id})
    if not rows:
        return None, None
    data = dict(rows[0])
    worker = {name: data.pop(f"w__{name}") for name in _WORKER_COLUMNS}
    return data, (worker if worker["id"] is not None else None)


async def submit_job(horde: Horde, *, kind: str, body: Any, user: Principal) -> dict[str, Any]:
    """Accept a worker's result (or fault) for a job it holds; answers `{reward}`."""
    behaviour = KINDS[kind]
    job_id = _parse_id(body.id)
    faulting = getattr(body, "state", "ok") == "faulted"
    async with horde.db.autocommit() as conn:
        job, worker = await _load(conn, job_id)
        _diagnose(job, worker, user, faulting)
        assert job is not None
        assert worker is not None
        if job["state"] != JobState.PROCESSING:
            return {"reward": 0}  # the worker reports a fault for a job that already timed out
        request = await horde.requests.get(conn, job["request_id"])
    if request is None or job["kind"] != kind:
        raise HordeError(RC.InvalidJobID, "Processing Generation with ID not found")
    outcome = await behaviour.accept(horde, body, request=request, job=job, worker=Worker(**worker))
    if outcome.faulted:
        await fault_jobs(horde, [job_id], reason="worker", worker_id=worker["id"])
        return {"reward": 0}
    settlement = _settle(horde, job, worker, request, outcome)
    # PostgreSQL completes in one statement; a webhook's outbox row (and SQLite) need a transaction.
    in_one = not request.webhook and not horde.db.is_sqlite
    # built before the transaction: it may read the stored image (r2=false)
    hook = await _webhook_body(horde, request, job, worker, outcome) if request.webhook else None
    async with horde.db.autocommit() if in_one else horde.db.transaction() as conn:
        won = await (_complete_in_one if in_one else _complete)(conn, settlement)
        if not won:
            current, _ = await _load(conn, job_id)
            _diagnose(current, worker, user, faulting)
            raise HordeError(RC.AbortedGen, "Processing Generation has been aborted or timed out")
        if request.webhook and hook is not None:
            await webhooks.enqueue(conn, horde, url=request.webhook, body=hook)
    horde.notifier.request_changed(request.id)
    if request.webhook:
        horde.webhooks.kick()
    return {"reward": round(outcome.reward, 2)}


async def _webhook_body(
    horde: Horde, request: RequestRow, job: dict[str, Any], worker: dict[str, Any], outcome: SubmitOutcome
) -> dict[str, Any]:
    """What the reference POSTs for a finished job: the job as status shows it, plus ids and kudos."""
    done = {**job, "state": JobState.DONE, "result": outcome.result, "result_meta": outcome.meta}
    generation = await KINDS[request.kind].generation(horde, request, {**done, "worker_name": worker["name"]})
    return {**generation, "request": str(request.id), "id": str(job["id"]), "kudos": round(outcome.reward, 2)}


@dataclass(frozen=True, slots=True)
class _Settlement:
    """What completing a job writes: its result, the money (hundredths) and the worker's figures."""

    job_id: uuid.UUID
    worker_id: uuid.UUID
    now: float
    reward: int
    burn: int
    result: str | None
    meta: dict[str, Any] | None
    legs: list[kudos.Leg]
    things: float
    sample: float  # things per second of this job, folded into the worker's speed


def _settle(
    horde: Horde, job: dict[str, Any], worker: dict[str, Any], request: RequestRow, outcome: SubmitOutcome
) -> _Settlement:
    now = horde.clock.now()
    reward = pricing.hundredths(outcome.reward)
    burn = pricing.hundredths(outcome.burn)
    legs = [
        kudos.Leg(amount=reward, user_id=worker["user_id"]),
        kudos.Leg(amount=-burn, user_id=request.user_id),
        kudos.Leg(amount=burn - reward, system="horde"),
    ]
    elapsed = max(now - float(job["started_at"] or now), 0.001)
    return _Settlement(
        job_id=job["id"], worker_id=worker["id"], now=now, reward=reward, burn=burn, result=outcome.result,
        meta=outcome.meta, legs=legs, things=outcome.things, sample=outcome.things / elapsed,
    )  # fmt: skip


# PostgreSQL: the whole completion as one statement (one round trip, atomic without BEGIN/COMMIT).
# The compare-and-set is `done`; the postings and the worker's figures are written only if it won.
_COMPLETE_PG = """
WITH done AS (
    UPDATE jobs SET state = 'done', finished_at = $3, cost = $4, result = $5, result_meta = $6::jsonb,
        reward = $7
    WHERE id = $1 AND state = 'processing' AND worker_id = $2
    RETURNING id
), paid AS (
    INSERT INTO kudos_postings (event_id, account, user_id, amount, reason, ref, created_at, folded)
    SELECT $8::uuid, leg.account, leg.user_id, leg.amount, $9, $10, $11::timestamptz, false
    FROM unnest($12::varchar[], $13::integer[], $14::bigint[]) AS leg(account, user_id, amount), done
    RETURNING 1
), stats AS (
    UPDATE workers SET fulfilments = fulfilments + 1, kudos_generated = kudos_generated + $7,
        things = things + $15, speed = speed * 0.9 + $16 * 0.1
    WHERE id = $2 AND EXISTS (SELECT 1 FROM done)
    RETURNING 1
)
SELECT count(*) FROM done
"""


async def _complete_in_one(conn: AsyncConnection, s: _Settlement) -> bool:
    """Store the result and pay in one statement (PostgreSQL, autocommit); False when the
    compare-and-set lost (someone else changed the job)."""
    rows = kudos.event_rows(s.legs, reason="generation", ref=str(s.job_id), now=s.now)
    first = rows[0] if rows else {"event_id": uuid.uuid4(), "created_at": utc(s.now)}
    meta = json.dumps(s.meta) if s.meta is not None else None
    driver = await driver_connection(conn)
    won = await driver.fetchval(
        _COMPLETE_PG, s.job_id, s.worker_id, s.now, s.burn, s.result, meta, s.reward,
        first["event_id"], "generation", str(s.job_id), first["created_at"],
        [r["account"] for r in rows], [r["user_id"] for r in rows], [r["amount"] for r in rows],
        s.things, s.sample,
    )  # fmt: skip
    return bool(won == 1)


async def _complete(conn: AsyncConnection, s: _Settlement) -> bool:
    """The same as `_complete_in_one`, statement by statement inside the caller's transaction."""
    won = await conn.execute(
        _DONE,
        {"jid": s.job_id, "wid": s.worker_id, "now": s.now, "burn": s.burn, "out": s.result,
         "meta": s.meta, "paid": s.reward},
    )  # fmt: skip
    if won.rowcount != 1:
        return False
    await kudos.post(conn, legs=s.legs, reason="generation", ref=str(s.job_id), now=s.now)
    params = {"wid": s.worker_id, "paid": s.reward, "add_things": s.things, "sample": s.sample}
    await conn.execute(_WORKER_STATS, params)
    return True


async def fault_jobs(
    horde: Horde, job_ids: list[uuid.UUID], *, reason: str, worker_id: uuid.UUID | None = None
) -> int:
    """Fault leased jobs (expired or reported) and re-queue replacements below the fault limit."""
    faulted = 0
    for job_id in job_ids:
        async with horde.db.transaction() as conn:
            row = (
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.state == JobState.PROCESSING)
                    .values(
                        state=JobState.FAULTED, finished_at=horde.clock.now(), result_meta={"fault": reason}
                    )
                    .returning(jobs)
                )
            ).first()
            if row is None:
                continue
            faulted += 1
            await _requeue_or_fail(horde, conn, dict(row._mapping))
            await conn.execute(
                update(workers_t)
                .where(workers_t.c.id == row.worker_id)
                .values(
                    uncompleted_jobs=workers_t.c.uncompleted_jobs + 1,
                    aborted_jobs=workers_t.c.aborted_jobs + (1 if reason == "expired" else 0),
                )
            )
        horde.notifier.request_changed(row.request_id)
    if faulted:
        horde.notifier.work_added(None)
    return faulted


async def _requeue_or_fail(horde: Horde, conn: AsyncConnection, job: dict[str, Any]) -> None:
    # Lock the request first: a cancel (or another fault) of the same request waits for us, so a
    # replacement is never queued for a request that was cancelled meanwhile.
    request_state = await conn.scalar(
        select(requests.c.state).where(requests.c.id == job["request_id"]).with_for_update()
    )
    scope = [jobs.c.request_id == job["request_id"], jobs.c.state == JobState.FAULTED]
    if job["form"] is not None:
        scope.append(jobs.c.form == job["form"])
    faults = int(await conn.scalar(select(func.count()).select_from(jobs).where(*scope)) or 0)
    limit = horde.settings.alchemy_fault_limit if job["form"] is not None else horde.settings.fault_limit
    if faults < limit and request_state == RequestState.ACTIVE:
        replacement = {k: job[k] for k in ("request_id", "kind", "position", "priority_key", "seed", "form")}
        await conn.execute(
            insert(jobs).values(
                id=uuid.uuid4(),
                state=JobState.QUEUED,
                created_at=horde.clock.now(),
                reward=0,
                cost=0,
                **replacement,
            )
        )
        return
    if job["form"] is None and request_state == RequestState.ACTIVE:
        await conn.execute(
            update(requests).where(requests.c.id == job["request_id"]).values(state=RequestState.FAULTED)
        )
        await conn.execute(
            update(jobs)
            .where(jobs.c.request_id == job["request_id"], jobs.c.state == JobState.QUEUED)
            .values(state=JobState.CANCELLED, finished_at=horde.clock.now())
        )
