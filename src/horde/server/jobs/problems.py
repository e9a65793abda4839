"""Problem jobs: results a worker reported as CSAM (SEMANTICS.md 3.4), kept for moderators.

Invariants: the record holds no result (none was stored); it is written after the job completed, from
the request row, and outlives the request (no foreign keys).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import ProblemJob as ProblemJobOut
from horde.server.jobs import store
from horde.server.jobs.models import ProblemJob
from horde.server.kit.orm import table, utc
from horde.server.state import Horde

problem_jobs = table(ProblemJob)
PAGE_SIZE = 50


async def record_problem_job(horde: Horde, *, job: dict[str, Any], worker_id: uuid.UUID) -> None:
    """Keep the record of a job reported as CSAM (once: the job completes once)."""
    requests = store.requests
    source = select(
        literal(job["id"]), requests.c.id, requests.c.kind, requests.c.user_id, literal(worker_id),
        requests.c.ipaddr, requests.c.prompt, literal(job.get("model") or ""), literal(horde.clock.now()),
    ).where(requests.c.id == job["request_id"])  # fmt: skip
    columns = ["id", "request_id", "kind", "user_id", "worker_id", "ipaddr", "prompt", "model", "reported_at"]
    async with horde.db.transaction() as conn:
        await conn.execute(insert(problem_jobs).from_select(columns, source))


async def list_problem_jobs(conn: AsyncConnection, *, page: int) -> list[ProblemJobOut]:
    """The problem jobs, newest first, a page of 50 at a time."""
    rows = await conn.execute(
        select(problem_jobs)
        .order_by(problem_jobs.c.reported_at.desc(), problem_jobs.c.id)
        .limit(PAGE_SIZE)
        .offset(max(page - 1, 0) * PAGE_SIZE)
    )
    return [
        ProblemJobOut(
            id=str(r.id),
            request_id=str(r.request_id),
            kind=r.kind,
            user_id=r.user_id,
            worker_id=str(r.worker_id),
            ipaddr=r.ipaddr,
            prompt=r.prompt,
            model=r.model,
            reported=utc(r.reported_at).isoformat(),
        )
        for r in rows
    ]
