"""The claim: one conditional `UPDATE jobs ... RETURNING` that picks the best queued jobs a worker may
take, leases them and fixes their model (ADR 0001, 0002, 0005), derived from `conditions.CONDITIONS`.

The statement, its cache key and its bind values all come from the same condition records: the key is
the kind plus every condition's `shape(w)`, the WHERE is every condition's `sql(w)`, the values every
condition's `binds(w)`. Statements are built once per key and reused (building one costs more than
running it); the dialect's statement layer (`jobs/statements/`) runs them.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    String,
    Update,
    bindparam,
    func,
    literal_column,
    select,
    update,
)

from horde.server.jobs.matching.conditions import CONDITIONS, jobs, request_models, requests
from horde.server.jobs.models import JobState
from horde.server.jobs.records import WorkerProfile
from horde.server.kit.sql import Fast, one_of

# The state is a literal, not a bind parameter, so PostgreSQL's cached generic plans can still use the
# partial queue index (WHERE state = 'queued').
QUEUED: ColumnElement[str] = literal_column("'queued'")
RETURNING = (jobs.c.id, jobs.c.request_id, jobs.c.seed, jobs.c.form, jobs.c.model, jobs.c.position)
ACROSS_REQUESTS = frozenset({"alchemy"})  # kinds whose pop takes `amount` jobs of any requests (forms)


def claim_key(w: WorkerProfile, *, limit: int, by_users: bool) -> tuple[Hashable, ...]:
    """What the claim statement's structure depends on: workers with one key share one statement."""
    shapes = tuple(condition.shape(w) for condition in CONDITIONS[w.kind])
    return (w.kind, shapes, bool(w.models), limit, by_users)


def match_filters(w: WorkerProfile, *, by_users: bool = False) -> list[ColumnElement[bool]]:
    """Every condition a queued job must meet for worker `w` (values from `claim_params`)."""
    filters = [jobs.c.state == QUEUED, jobs.c.kind == w.kind]
    filters += [sql for condition in CONDITIONS[w.kind] if (sql := condition.sql(w)) is not None]
    if by_users:
        filters.append(one_of(requests.c.user_id, "user_ids"))
    return filters


def claim_params(
    w: WorkerProfile,
    *,
    now: float,
    fallback_model: str | None = None,
    user_ids: Sequence[int] = (),
    ttl_scale: float = 1.0,
) -> dict[str, object]:
    """The values of a claim statement's bind parameters."""
    params: dict[str, object] = {}
    for condition in CONDITIONS[w.kind]:
        params.update(condition.binds(w))
    params.update(
        wid=w.worker_id, models=sorted(w.models), user_ids=list(user_ids), now=now,
        ttl_scale=ttl_scale * (3.0 if w.extra_slow else 1.0), fallback_model=fallback_model,
    )  # fmt: skip
    return params


def _model_choice(w: WorkerProfile) -> Any:
    if w.kind in ACROSS_REQUESTS:  # alchemy: the form is the job's "model"
        return jobs.c.form
    if not w.models:
        return bindparam("fallback_model", type_=String)
    served = (
        select(request_models.c.model)
        .where(request_models.c.request_id == jobs.c.request_id)
        .where(one_of(request_models.c.model, "models"))
        .order_by(func.random())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(served, bindparam("fallback_model", type_=String))


def _lease() -> Any:
    ttl = select(requests.c.ttl).where(requests.c.id == jobs.c.request_id).scalar_subquery()
    return bindparam("now", type_=Float) + ttl * bindparam("ttl_scale", type_=Float)


_CLAIMS: dict[tuple[Hashable, ...], Fast] = {}


def claim_statement(w: WorkerProfile, *, limit: int = 1, by_users: bool = False) -> Fast:
    """Lease up to `limit` best queued jobs for `w`: `UPDATE jobs ... RETURNING` the claimed rows."""
    key = claim_key(w, limit=limit, by_users=by_users)
    statement = _CLAIMS.get(key)
    if statement is None:
        candidates = (
            select(jobs.c.id)
            .select_from(jobs.join(requests, requests.c.id == jobs.c.request_id))
            .where(*match_filters(w, by_users=by_users))
            .order_by(jobs.c.priority_key.desc(), jobs.c.id.desc())
            .limit(limit)
            .with_for_update(skip_locked=True, of=jobs)
        )
        statement = _CLAIMS[key] = Fast(_lease_update(candidates, _model_choice(w)))
    return statement


_BATCHES: dict[int, Fast] = {}


def batch_statement(limit: int) -> Fast:
    """Lease up to `limit` more queued jobs of one request with the first one's model (batching).

    Parameters: rid (the request), batch_model, wid (the worker), now, ttl_scale.
    """
    statement = _BATCHES.get(limit)
    if statement is None:
        candidates = (
            select(jobs.c.id)
            .where(jobs.c.request_id == bindparam("rid"), jobs.c.state == QUEUED)
            .order_by(jobs.c.position)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = _BATCHES[limit] = Fast(_lease_update(candidates, bindparam("batch_model", type_=String)))
    return statement


def _lease_update(candidates: Select[Any], model: Any) -> Update:
    # The candidates are a materialized CTE: `id IN (SELECT .. LIMIT n SKIP LOCKED)` may be evaluated
    # more than once by PostgreSQL and then lease more than n rows.
    chosen = candidates.cte("chosen").prefix_with("MATERIALIZED", dialect="postgresql")
    return (
        update(jobs)
        .where(jobs.c.id == chosen.c.id, jobs.c.state == QUEUED)
        .values(
            state=JobState.PROCESSING,
            worker_id=bindparam("wid"),
            started_at=bindparam("now", type_=Float),
            lease_expires_at=_lease(),
            model=model,
        )
        .returning(*RETURNING)
    )
