"""Request status: counts from the request's jobs, queue figures from the snapshot (<= 1 s old)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy import bindparam, select

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.jobs import store
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.models import JobState, RequestState
from horde.server.jobs.records import RequestRow
from horde.server.kit.orm import table
from horde.server.kit.sql import Fast
from horde.server.state import Horde
from horde.server.workers.models import Worker

workers_t = table(Worker)


def parse_request_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise HordeError(RC.RequestNotFound, f"Request with ID '{raw}' not found") from None


# One statement, built once: the request's state and its jobs with their workers' names.
_STATUS = Fast(
    select(store.requests.c.state.label("request_state"), store.jobs, workers_t.c.name.label("worker_name"))
    .select_from(
        store.requests.outerjoin(store.jobs, store.jobs.c.request_id == store.requests.c.id).outerjoin(
            workers_t, workers_t.c.id == store.jobs.c.worker_id
        )
    )
    .where(store.requests.c.id == bindparam("rid"), store.requests.c.kind == bindparam("kind"))
    .order_by(store.jobs.c.position, store.jobs.c.created_at)
)


async def _load(
    horde: Horde, kind: str, request_id: uuid.UUID
) -> tuple[RequestRow, str, list[dict[str, Any]]]:
    async with horde.db.autocommit() as conn:
        rows = await horde.statements.rows(conn, _STATUS, {"rid": request_id, "kind": kind})
        if not rows:
            raise HordeError(RC.RequestNotFound, f"Request with ID '{request_id}' not found")
        request = await horde.requests.get(conn, request_id)
    if request is None:  # deleted by the expiry sweep a moment ago
        raise HordeError(RC.RequestNotFound, f"Request with ID '{request_id}' not found")
    state = rows[0]["request_state"]
    jobs = []
    for row in rows:
        del row["request_state"]
        if row["id"] is not None:
            jobs.append(row)
    return request, str(state), jobs


async def request_status(horde: Horde, *, kind: str, request_id: uuid.UUID, full: bool) -> dict[str, Any]:
    """The status body of a request (check: `full=False`, no generations)."""
    request, state, jobs = await _load(horde, kind, request_id)
    counts = Counter(job["state"] for job in jobs)
    summary = {
        "finished": counts[JobState.DONE],
        "processing": counts[JobState.PROCESSING],
        "restarted": counts[JobState.FAULTED],
        "waiting": counts[JobState.QUEUED],
        "done": state == RequestState.FAULTED or counts[JobState.QUEUED] + counts[JobState.PROCESSING] == 0,
        "faulted": state == RequestState.FAULTED,
        "kudos": round(sum(int(job["cost"] or 0) for job in jobs) / 100),
        **await _queue_figures(horde, kind, request, counts[JobState.QUEUED], counts[JobState.PROCESSING]),
    }
    return await KINDS[kind].status_body(horde, request, jobs, summary=summary, full=full)


async def _queue_figures(
    horde: Horde, kind: str, request: RequestRow, queued: int, processing: int
) -> dict[str, Any]:
    if not queued:
        return {"queue_position": 0, "wait_time": 0, "is_possible": True}
    snap = await horde.snapshots.get(kind)
    position, things, possible = snap.position(request.id)
    capacity = snap.capacity(request.id)
    wait = int(things / capacity) if capacity > 0 else 0
    return {
        "queue_position": position,
        "wait_time": wait,
        "is_possible": possible or processing > 0 or position == 0,
    }
