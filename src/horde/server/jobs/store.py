"""Reading and writing requests and jobs (Core); immutable request parts are cached per node."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.jobs.kinds.base import RequestRow
from horde.server.jobs.models import Job, JobState, Request, RequestModel, RequestWorker
from horde.server.jobs.records import NewRequest
from horde.server.kit.cache import TTLCache
from horde.server.kit.clock import Clock
from horde.server.kit.orm import table
from horde.server.kit.sql import Fast, one_of

jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)
request_workers = table(RequestWorker)

_ROW_COLUMNS = (
    requests.c.id, requests.c.kind, requests.c.user_id, requests.c.payload, requests.c.kudos,
    requests.c.ttl, requests.c.n, requests.c.slow_workers, requests.c.worker_blacklist,
    requests.c.webhook, requests.c.created_at, requests.c.nsfw,
)  # fmt: skip


_REQUEST = Fast(select(*_ROW_COLUMNS).where(requests.c.id == bindparam("rid")))
_MODELS = Fast(select(request_models.c.model).where(request_models.c.request_id == bindparam("rid")))
_INSERT_REQUEST = insert(requests)
_INSERT_MODELS = insert(request_models)
_INSERT_TARGETS = insert(request_workers)
_INSERT_JOBS = insert(jobs)


class RequestCache:
    """Request rows by id: their fields never change after insert, so a node may keep them."""

    def __init__(self, clock: Clock) -> None:
        self._cache: TTLCache[uuid.UUID, RequestRow] = TTLCache(ttl=600, maxsize=20_000, clock=clock.now)

    async def get(self, conn: AsyncConnection, request_id: uuid.UUID) -> RequestRow | None:
        row = self._cache.get(request_id)
        if row is None:
            row = await load_request(conn, request_id)
            if row is not None:
                self._cache.put(request_id, row)
        return row

    def cached(self, request_id: uuid.UUID) -> RequestRow | None:
        return self._cache.get(request_id)

    def remember(self, row: RequestRow) -> None:
        """A request this node just stored: its first pop here needs no database read."""
        self._cache.put(row.id, row)


async def load_request(conn: AsyncConnection, request_id: uuid.UUID) -> RequestRow | None:
    """The request row with its models, or None."""
    rows = await _REQUEST.rows(conn, {"rid": request_id})
    if not rows:
        return None
    models = [row["model"] for row in await _MODELS.rows(conn, {"rid": request_id})]
    return RequestRow(**rows[0], models=models)


_QUEUED_OF_USER = (
    select(func.count())
    .select_from(jobs.join(requests, requests.c.id == jobs.c.request_id))
    .where(
        requests.c.user_id == bindparam("uid"),
        jobs.c.kind == bindparam("kind"),
        jobs.c.state == literal_column("'queued'"),
    )
)
_QUEUED_OF_USER_FOR_MODELS = _QUEUED_OF_USER.where(
    requests.c.any_model
    | requests.c.id.in_(select(request_models.c.request_id).where(one_of(request_models.c.model, "models")))
)


async def queued_jobs_of_user(
    conn: AsyncConnection, *, user_id: int, kind: str, models: list[str] | None = None
) -> int:
    """Jobs not yet handed out across the user's requests of one kind (the concurrency measure).

    With `models`, only requests that name one of them or name none count (the anonymous budget is
    shared per model, SEMANTICS.md 3.2).
    """
    if models is None:
        return int(await conn.scalar(_QUEUED_OF_USER, {"uid": user_id, "kind": kind}) or 0)
    params = {"uid": user_id, "kind": kind, "models": list(models)}
    return int(await conn.scalar(_QUEUED_OF_USER_FOR_MODELS, params) or 0)


async def insert_request(
    conn: AsyncConnection,
    new: NewRequest,
    *,
    user_id: int,
    now: float,
    expires_at: float,
    priority_key: float,
    ttl: float,
    client_agent: str,
    ipaddr: str,
) -> uuid.UUID:
    """Store a prepared request and its queued jobs."""
    request_id = new.id
    await conn.execute(
        _INSERT_REQUEST,
        dict(
            id=request_id, kind=new.kind, user_id=user_id, created_at=now, expires_at=expires_at,
            priority_key=priority_key, ttl=ttl, n=len(new.jobs), prompt=new.prompt, pixels=new.pixels,
            max_length=new.max_length, max_context_length=new.max_context_length, tiles=new.tiles,
            nsfw=new.nsfw, trusted_workers=new.trusted_workers, slow_workers=new.slow_workers,
            extra_slow_workers=new.extra_slow_workers, worker_blacklist=new.worker_blacklist,
            has_worker_list=bool(new.worker_ids), any_model=not new.models,
            required_caps=new.required_caps, payload=new.payload, webhook=new.webhook, kudos=new.kudos,
            client_agent=client_agent[:1000], ipaddr=ipaddr, state="active",
        ),
    )  # fmt: skip
    if new.models:
        await conn.execute(_INSERT_MODELS, [{"request_id": request_id, "model": m} for m in new.models])
    if new.worker_ids:
        rows = [{"request_id": request_id, "worker_id": w} for w in dict.fromkeys(new.worker_ids)]
        await conn.execute(_INSERT_TARGETS, rows)
    await conn.execute(_INSERT_JOBS, [
        {"id": uuid.uuid4(), "request_id": request_id, "kind": new.kind, "state": JobState.QUEUED,
         "position": i, "priority_key": priority_key, "seed": spec.seed, "form": spec.form,
         "created_at": now, "reward": 0, "cost": 0}
        for i, spec in enumerate(new.jobs)
    ])  # fmt: skip
    return request_id


async def jobs_of_request(conn: AsyncConnection, request_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every job row of a request, in position order."""
    rows = await conn.execute(
        select(jobs).where(jobs.c.request_id == request_id).order_by(jobs.c.position, jobs.c.created_at)
    )
    return [dict(row._mapping) for row in rows]
