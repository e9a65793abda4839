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
    Update,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    update,
)

from horde.server.jobs.models import Job, JobState, Request, RequestModel, RequestWorker
from horde.server.jobs.records import WorkerProfile
from horde.server.kit.orm import table
from horde.server.workers.capabilities import ALL_CAPS

jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)
request_workers = table(RequestWorker)

RETURNING = (jobs.c.id, jobs.c.request_id, jobs.c.seed, jobs.c.form, jobs.c.model, jobs.c.position)


def _worker_list_filter(w: WorkerProfile) -> ColumnElement[bool]:
    listed = exists().where(
        request_workers.c.request_id == requests.c.id, request_workers.c.worker_id == w.worker_id
    )
    return or_(
        requests.c.has_worker_list == false(),
        and_(requests.c.worker_blacklist == false(), listed),
        and_(requests.c.worker_blacklist == true(), not_(listed)),
    )


def _common_filters(w: WorkerProfile) -> list[ColumnElement[bool]]:
    filters = [_worker_list_filter(w)]
    if w.slow:
        filters.append(requests.c.slow_workers == true())
    if w.extra_slow:
        filters.append(requests.c.extra_slow_workers == true())
    if not w.owner_trusted:
        filters.append(requests.c.trusted_workers == false())
    missing = int(ALL_CAPS & ~w.caps)
    if missing:
        filters.append(requests.c.required_caps.op("&")(missing) == 0)
    for word in w.blacklist:
        filters.append(not_(func.lower(requests.c.prompt).contains(word, autoescape=True)))
    return filters


def _models_filter(w: WorkerProfile) -> ColumnElement[bool]:
    if not w.models:
        return requests.c.any_model == true()
    served = exists().where(
        request_models.c.request_id == requests.c.id, request_models.c.model.in_(sorted(w.models))
    )
    return or_(requests.c.any_model == true(), served)


def _kind_filters(w: WorkerProfile) -> list[ColumnElement[bool]]:
    if w.kind == "image":
        filters = [requests.c.pixels <= w.max_pixels, _models_filter(w)]
        if not w.nsfw:
            filters.append(requests.c.nsfw == false())
        return filters
    if w.kind == "text":
        return [
            requests.c.max_length <= w.max_length,
            requests.c.max_context_length <= w.max_context_length,
            _models_filter(w),
        ]
    return [jobs.c.form.in_(sorted(w.forms)) if w.forms else false(), requests.c.tiles <= w.max_tiles]


def match_filters(w: WorkerProfile, *, user_ids: Sequence[int] = ()) -> list[ColumnElement[bool]]:
    """Every condition a queued job must meet for worker `w` (optionally only these users' requests)."""
    filters = [jobs.c.state == JobState.QUEUED, jobs.c.kind == w.kind, *_kind_filters(w)]
    filters += _common_filters(w)
    if user_ids:
        filters.append(requests.c.user_id.in_(list(user_ids)))
    return filters


def _model_choice(w: WorkerProfile, fallback: str | None) -> Any:
    if w.kind == "alchemy":
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
    return _lease_update(jobs.c.id.in_(candidates), w, now, model, ttl_scale)


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
    return _lease_update(jobs.c.id.in_(candidates), w, now, literal(model), ttl_scale)


def _lease_update(
    where: ColumnElement[bool], w: WorkerProfile, now: float, model: Any, ttl_scale: float
) -> Update:
    return (
        update(jobs)
        .where(where, jobs.c.state == JobState.QUEUED)
        .values(
            state=JobState.PROCESSING,
            worker_id=w.worker_id,
            started_at=now,
            lease_expires_at=_lease(now, w, ttl_scale),
            model=model,
        )
        .returning(*RETURNING)
    )
