"""Aesthetic ratings (POST /generate/rate/{id}): answered as the reference answers them (ADR 0017).

Invariants: nothing is recorded and no kudos move. The reference only takes ratings of requests made
with `shared: true`, and it overwrites `shared` to false for every model but its SDXL beta; this horde
never shares, so a completed request's rating is refused with AestheticsNotPublic, like the reference's.
"""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import AestheticsPayload
from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.jobs.models import JobState, RequestState
from horde.server.jobs.status import parse_request_id
from horde.server.jobs.store import jobs, requests

_OPEN = (JobState.QUEUED, JobState.PROCESSING)


async def rate_request(conn: AsyncConnection, *, raw_id: str, body: AestheticsPayload) -> NoReturn:
    """Refuse a rating as the reference does: unknown request, not completed, or not shared."""
    del body  # validated (a malformed one is a 400 before this), never stored: see the module docstring
    request_id = parse_request_id(raw_id)
    state = await conn.scalar(
        select(requests.c.state).where(requests.c.id == request_id, requests.c.kind == "image")
    )
    if state is None:
        raise HordeError(RC.RequestNotFound, f"Request with ID '{request_id}' not found")
    if state != RequestState.FAULTED:
        open_jobs = await conn.scalar(
            select(func.count()).where(jobs.c.request_id == request_id, jobs.c.state.in_(_OPEN))
        )
        if open_jobs:
            raise HordeError(
                RC.InvalidAestheticAttempt, "You can only aesthetically rate completed requests!"
            )
    raise HordeError(RC.AestheticsNotPublic, f"Generation {request_id} was not shared, so it cannot be rated")
