"""The pop matching query and the other statements of the jobs hot paths (Core, no ORM).

`claim_statement` is the whole pop: one conditional `UPDATE ... RETURNING` that picks the best queued
job this worker may take, leases it and fixes its model (ADR 0001, 0002, 0005).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    func,
    literal,
    select,
    update,
)

from horde.server.jobs.filters import common_filters
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.models import Job, JobState, Request, RequestModel, RequestWorker
from horde.server.jobs.records import WorkerProfile
from horde.server.kit.orm import table

jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)
request_workers = table(RequestWorker)

RETURNING = (jobs.c.id, jobs.c.request_id, jobs.c.seed, jobs.c.form, jobs.c.model, jobs.c.position)


def match_filters(w: WorkerProfile, *, user_ids: Sequence[int] = ()) -> list[ColumnElement[bool]]:
    """Every condition a queued job must meet for worker `w` (optionally only these users' requests)."""
    filters = [jobs.c.state == JobState.QUEUED, jobs.c.kind == w.kind, *KINDS[w.kind].sql_filters(w)]
    filters += common_filters(w)
    if user_ids:
        filters.append(requests.c.user_id.in_(list(user_ids)))
    return filters


def _model_choice(w: WorkerProfile, fallback: str | None) -> Any:
    if KINDS[w.kind].batch_across_requests:  # alchemy: the form is the job's "model"
        return jobs.c.form
    served = (
        select(request_models.c.model)
        .where(request_models.c.request_id == jobs.c.request_id)
        .where(request_models.c.model.in_(sorted(w.models) or [""]))
        .order_by(func.random())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(served, literal(fallback))


def _lease(now: float, w: WorkerProfile, ttl_scale: float) -> Any:
    ttl = select(requests.c.ttl).where(requests.c.id == jobs.c.request_id).scalar_subquery()
    return literal(now) + ttl * (ttl_scale * (3.0 if w.extra_slow else 1.0))


def claim_statement(
    w: WorkerProfile,
    *,
    now: float,
    limit: int = 1,
    fallback_model: str | None = None,
    user_ids: Sequence[int] = (),
    ttl_scale: float = 1.0,
) -> Update:
    """Lease up to `limit` best queued jobs for `w`: `UPDATE jobs ... RETURNING` the claimed rows."""
    candidates = (
        select(jobs.c.id)
        .select_from(jobs.join(requests, requests.c.id == jobs.c.request_id))
        .where(*match_filters(w, user_ids=user_ids))
        .order_by(jobs.c.priority_key.desc(), jobs.c.id.desc())
        .limit(limit)
        .with_for_update(skip_locked=True, of=jobs)
    )
    model = _model_choice(w, fallback_model)
    return _lease_update(candidates, w, now, model, ttl_scale)


def batch_statement(
    w: WorkerProfile,
    *,
    request_id: uuid.UUID,
    model: str | None,
    now: float,
    limit: int,
    ttl_scale: float = 1.0,
) -> Update:
    """Lease up to `limit` more queued jobs of one request, with the model of the first (batching)."""
    candidates = (
        select(jobs.c.id)
        .where(jobs.c.request_id == request_id, jobs.c.state == JobState.QUEUED)
        .order_by(jobs.c.position)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return _lease_update(candidates, w, now, literal(model), ttl_scale)


def _lease_update(
    candidates: Select[Any], w: WorkerProfile, now: float, model: Any, ttl_scale: float
) -> Update:
    # The candidates are a materialized CTE: `id IN (SELECT .. LIMIT n SKIP LOCKED)` may be evaluated
    # more than once by PostgreSQL and then lease more than n rows.
    chosen = candidates.cte("chosen").prefix_with("MATERIALIZED", dialect="postgresql")
    return (
        update(jobs)
        .where(jobs.c.id == chosen.c.id, jobs.c.state == JobState.QUEUED)
        .values(
            state=JobState.PROCESSING,
            worker_id=w.worker_id,
            started_at=now,
            lease_expires_at=_lease(now, w, ttl_scale),
            model=model,
        )
        .returning(*RETURNING)
    )
