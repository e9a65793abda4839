"""The concurrency measure: jobs not yet handed out across a user's requests of one kind."""

from __future__ import annotations

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.jobs.models import Job, Request, RequestModel
from horde.server.kit.orm import table
from horde.server.kit.sql import one_of

jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)

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
    shared per model, SEMANTICS.md 3.2). PostgreSQL runs the same count inside `horde_queue_request`.
    """
    if models is None:
        return int(await conn.scalar(_QUEUED_OF_USER, {"uid": user_id, "kind": kind}) or 0)
    params = {"uid": user_id, "kind": kind, "models": list(models)}
    return int(await conn.scalar(_QUEUED_OF_USER_FOR_MODELS, params) or 0)
