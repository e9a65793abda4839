"""The interface of the job lifecycle's statements and what both dialects share (ADR 0011).

Claim, batch, load, complete, fault/requeue and queuing a request live here, behind `JobStatements`;
`postgresql.py` and `sqlite.py` implement what differs, and `statements_for` picks one at start-up.
Services call these methods and never branch on the dialect.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.db import Database
from horde.server.jobs import matching
from horde.server.jobs.models import Job, JobState, Request, RequestModel, RequestState
from horde.server.jobs.records import ClaimedJob, NewRequest, RequestRow, WorkerProfile
from horde.server.kit.orm import table
from horde.server.kit.sql import Fast
from horde.server.kudos import service as kudos
from horde.server.kudos.service import Leg
from horde.server.workers import writes as worker_writes
from horde.server.workers.models import Worker

jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)
workers = table(Worker)

_WORKER_COLUMNS = ("id", "user_id", "name", "bridge_agent", "kind", "team_id")
_LOAD_JOB = Fast(
    select(jobs, *[workers.c[name].label(f"w__{name}") for name in _WORKER_COLUMNS])
    .outerjoin(workers, workers.c.id == jobs.c.worker_id)
    .where(jobs.c.id == bindparam("jid"))
)
_ROW_COLUMNS = (
    requests.c.id, requests.c.kind, requests.c.user_id, requests.c.payload, requests.c.kudos,
    requests.c.ttl, requests.c.n, requests.c.slow_workers, requests.c.worker_blacklist,
    requests.c.webhook, requests.c.created_at, requests.c.nsfw,
)  # fmt: skip
_LOAD_REQUEST = Fast(select(*_ROW_COLUMNS).where(requests.c.id == bindparam("rid")))
_LOAD_MODELS = Fast(select(request_models.c.model).where(request_models.c.request_id == bindparam("rid")))


@dataclass(frozen=True, slots=True)
class Hook:
    """A webhook delivery to record with a completion (the outbox row commits with it)."""

    url: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Completion:
    """What completing a job writes: its result, the money (hundredths), the worker's figures and a
    webhook delivery, all or nothing, and only if the job is still the worker's (compare-and-set)."""

    job_id: uuid.UUID
    worker_id: uuid.UUID
    now: float
    reward: int
    burn: int
    result: str | None
    meta: dict[str, Any] | None
    legs: list[Leg]
    things: float
    sample: float  # things per second of this job, folded into the worker's speed
    hook: Hook | None = None
    team_id: uuid.UUID | None = None  # the team credited with this job (stamped at settlement, ADR 0016)
    hold_ref: str | None = None  # the request's upfront hold, which this charge consumes
    kind: str = ""  # the job's kind and model, for its statistics event (ADR 0021)
    model: str | None = None
    records: dict[str, object] | None = None  # `users.records.recorded_values` of the job (ADR 0022)


@dataclass(frozen=True, slots=True)
class NewRow:
    """A prepared request to store, with what its owner's concurrency check needs."""

    new: NewRequest
    user_id: int
    now: float
    expires_at: float
    ttl: float
    client_agent: str
    ipaddr: str
    limit: int  # jobs the user may have queued of this kind, this request's included
    count_models: list[str] | None  # count only requests naming these models (or none): anonymous use
    hold: int = 0  # hundredths of upfront kudos to reserve with the request (0: none)
    floor: int = 0  # the owner's balance floor, for the reservation


@dataclass(frozen=True, slots=True)
class Queued:
    """The outcome of `queue_request`: stored, or why not (an unknown target, the concurrency cap, too
    few available kudos for the upfront hold)."""

    stored: bool
    queued: int = 0  # jobs of the user already queued (when refused for the cap)
    missing_worker: uuid.UUID | None = None
    short: bool = False  # the hold did not fit the owner's available kudos


@dataclass(frozen=True, slots=True)
class Faulted:
    request_id: uuid.UUID
    worker_id: uuid.UUID | None


def priority_key(balance_hundredths: int, now: float) -> float:
    """Queue order fixed at activation: kudos minus 5 per second of age (ADR 0005)."""
    return balance_hundredths / 100 - 5.0 * now


def request_values(row: NewRow, *, priority: float) -> dict[str, Any]:
    """The `requests` row of a prepared request."""
    new = row.new
    return dict(
        id=new.id, kind=new.kind, user_id=row.user_id, state=RequestState.ACTIVE, created_at=row.now,
        expires_at=row.expires_at, priority_key=priority, ttl=row.ttl, n=len(new.jobs), prompt=new.prompt,
        pixels=new.pixels, max_length=new.max_length, max_context_length=new.max_context_length,
        tiles=new.tiles, nsfw=new.nsfw, trusted_workers=new.trusted_workers, slow_workers=new.slow_workers,
        extra_slow_workers=new.extra_slow_workers, worker_blacklist=new.worker_blacklist,
        has_worker_list=bool(new.worker_ids), any_model=not new.models, required_caps=new.required_caps,
        payload=new.payload, webhook=new.webhook, kudos=new.kudos, client_agent=row.client_agent[:1000],
        ipaddr=row.ipaddr, over_average_steps=new.over_average_steps, softprompt=new.softprompt,
        unsafe_ip=new.unsafe_ip, upfront_covered=new.upfront_covered,
    )  # fmt: skip


def job_values(row: NewRow, *, priority: float) -> list[dict[str, Any]]:
    """The queued `jobs` rows of a prepared request."""
    new = row.new
    return [
        {"id": uuid.uuid4(), "request_id": new.id, "kind": new.kind, "state": JobState.QUEUED, "position": i,
         "priority_key": priority, "seed": spec.seed, "form": spec.form, "model": None, "worker_id": None,
         "created_at": row.now, "started_at": None, "lease_expires_at": None, "finished_at": None,
         "result": None, "result_meta": None, "reward": 0, "cost": 0}
        for i, spec in enumerate(new.jobs)
    ]  # fmt: skip


class JobStatements(ABC):
    """The job lifecycle's statements for one dialect."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @abstractmethod
    async def rows(
        self, conn: AsyncConnection, statement: Fast, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Run a prebuilt statement on `conn`; its rows as dicts."""

    @abstractmethod
    async def complete(self, c: Completion) -> bool:
        """Store the result, pay, update the worker and record the webhook, atomically; False (and
        nothing written) when the job is no longer this worker's to complete."""

    @abstractmethod
    async def queue_request(self, row: NewRow) -> Queued:
        """Check the targets and the owner's concurrency (one check at a time per user), take the
        upfront hold from the owner's available kudos, and store the request with its queued jobs,
        atomically."""

    async def claim(
        self,
        conn: AsyncConnection,
        w: WorkerProfile,
        *,
        limit: int,
        user_ids: Sequence[int],
        now: float,
        fallback_model: str | None,
        ttl_scale: float,
    ) -> list[ClaimedJob]:
        """Lease up to `limit` best queued jobs for `w` (of `user_ids`' requests when given)."""
        statement = matching.claim_statement(w, limit=limit, by_users=bool(user_ids))
        params = matching.claim_params(
            w, now=now, fallback_model=fallback_model, user_ids=user_ids, ttl_scale=ttl_scale
        )
        return [ClaimedJob(**row) for row in await self.rows(conn, statement, params)]

    async def batch(
        self,
        conn: AsyncConnection,
        *,
        limit: int,
        request_id: uuid.UUID,
        model: str | None,
        worker_id: uuid.UUID,
        now: float,
        ttl_scale: float,
    ) -> list[ClaimedJob]:
        """Lease up to `limit` more queued jobs of one request with the same model."""
        params = {
            "rid": request_id,
            "batch_model": model,
            "wid": worker_id,
            "now": now,
            "ttl_scale": ttl_scale,
        }
        return [ClaimedJob(**row) for row in await self.rows(conn, matching.batch_statement(limit), params)]

    async def load_job(
        self, conn: AsyncConnection, job_id: uuid.UUID
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The job and the worker holding it, in one query."""
        found = await self.rows(conn, _LOAD_JOB, {"jid": job_id})
        if not found:
            return None, None
        data = found[0]
        worker = {name: data.pop(f"w__{name}") for name in _WORKER_COLUMNS}
        return data, (worker if worker["id"] is not None else None)

    async def load_request(self, conn: AsyncConnection, request_id: uuid.UUID) -> RequestRow | None:
        """The request row with its models, or None."""
        found = await self.rows(conn, _LOAD_REQUEST, {"rid": request_id})
        if not found:
            return None
        models = [row["model"] for row in await self.rows(conn, _LOAD_MODELS, {"rid": request_id})]
        return RequestRow(**found[0], models=models)

    async def fault(
        self, job_id: uuid.UUID, *, reason: str, now: float, fault_limit: int, form_fault_limit: int
    ) -> Faulted | None:
        """Fault a leased job and queue a replacement below the fault limit (else fail the request);
        None when the job was not leased any more."""
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.state == JobState.PROCESSING)
                    .values(state=JobState.FAULTED, finished_at=now, result_meta={"fault": reason})
                    .returning(jobs)
                )
            ).first()
            if row is None:
                return None
            job = dict(row._mapping)
            limit = form_fault_limit if job["form"] is not None else fault_limit
            await _requeue_or_fail(conn, job, now=now, limit=limit)
            await conn.execute(worker_writes.faulted(job["worker_id"], expired=reason == "expired"))
        return Faulted(request_id=job["request_id"], worker_id=job["worker_id"])


async def _requeue_or_fail(conn: AsyncConnection, job: dict[str, Any], *, now: float, limit: int) -> None:
    # Lock the request first: a cancel (or another fault) of the same request waits for us, so a
    # replacement is never queued for a request that was cancelled meanwhile.
    request_state = await conn.scalar(
        select(requests.c.state).where(requests.c.id == job["request_id"]).with_for_update()
    )
    scope = [jobs.c.request_id == job["request_id"], jobs.c.state == JobState.FAULTED]
    if job["form"] is not None:
        scope.append(jobs.c.form == job["form"])
    faults = int(await conn.scalar(select(func.count()).select_from(jobs).where(*scope)) or 0)
    if faults < limit and request_state == RequestState.ACTIVE:
        replacement = {k: job[k] for k in ("request_id", "kind", "position", "priority_key", "seed", "form")}
        await conn.execute(
            insert(jobs).values(
                id=uuid.uuid4(), state=JobState.QUEUED, created_at=now, reward=0, cost=0, **replacement
            )
        )
        return
    if job["form"] is None and request_state == RequestState.ACTIVE:
        await conn.execute(
            update(requests).where(requests.c.id == job["request_id"]).values(state=RequestState.FAULTED)
        )
        await kudos.release_holds(conn, [kudos.hold_ref(job["request_id"])])
        await conn.execute(
            update(jobs)
            .where(jobs.c.request_id == job["request_id"], jobs.c.state == JobState.QUEUED)
            .values(state=JobState.CANCELLED, finished_at=now)
        )
