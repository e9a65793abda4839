"""`GET /metrics`: the Prometheus text format (outside /api: not part of API v2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.auth import HordeDep
from horde.server.errors import HordeError
from horde.server.jobs.models import Job, JobState
from horde.server.kit.orm import table, utc
from horde.server.observe.metrics import DB_POOL, QUEUE_DEPTH, REGISTRY, WORKERS_ONLINE
from horde.server.state import Horde
from horde.server.workers.models import Worker

router = APIRouter(include_in_schema=False)
_JOBS = table(Job)
_WORKERS = table(Worker)
KINDS = ("image", "text", "alchemy")


@router.get("/metrics")
async def metrics(horde: HordeDep) -> Response:
    if not horde.settings.metrics:
        raise HordeError("NotFound", "Not Found", status_code=404)
    await _read_gauges(horde)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def _read_gauges(horde: Horde) -> None:
    """The series that are state, not events: read from the database and the pool at scrape time."""
    since = utc(horde.clock.now() - horde.settings.worker_online_window)
    queued = select(_JOBS.c.kind, func.count()).where(_JOBS.c.state == JobState.QUEUED).group_by(_JOBS.c.kind)
    online = (
        select(_WORKERS.c.kind, func.count())
        .where(_WORKERS.c.last_check_in >= since)
        .group_by(_WORKERS.c.kind)
    )
    async with horde.db.autocommit() as conn:
        depth = await _by_kind(conn, queued)
        workers = await _by_kind(conn, online)
    for kind in KINDS:
        QUEUE_DEPTH.labels(kind).set(depth.get(kind, 0))
        WORKERS_ONLINE.labels(kind).set(workers.get(kind, 0))
    pool = horde.db.engine.pool
    for state, read in (("in_use", "checkedout"), ("idle", "checkedin"), ("size", "size")):
        DB_POOL.labels(state).set(getattr(pool, read, lambda: 0)())


async def _by_kind(conn: AsyncConnection, statement: Select[Any]) -> dict[str, int]:
    return {str(row[0]): int(row[1]) for row in await conn.execute(statement)}
