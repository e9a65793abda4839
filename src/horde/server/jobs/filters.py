"""SQL building blocks of the claim, shared by the kinds (each kind adds its own in `kinds/`)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, func, not_, or_, true

from horde.server.jobs.models import Job, Request, RequestModel, RequestWorker
from horde.server.jobs.records import WorkerProfile
from horde.server.kit.orm import table
from horde.server.kit.sql import one_of
from horde.server.workers.capabilities import ALL_CAPS

jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)
request_workers = table(RequestWorker)


def worker_list_filter() -> ColumnElement[bool]:
    listed = exists().where(
        request_workers.c.request_id == requests.c.id, request_workers.c.worker_id == bindparam("wid")
    )
    return or_(
        requests.c.has_worker_list == false(),
        and_(requests.c.worker_blacklist == false(), listed),
        and_(requests.c.worker_blacklist == true(), not_(listed)),
    )


def common_filters(w: WorkerProfile) -> list[ColumnElement[bool]]:
    """The shared conditions; their values come from `common_params` (statements are cached by shape)."""
    filters = [worker_list_filter()]
    if w.slow:
        filters.append(requests.c.slow_workers == true())
    if w.extra_slow:
        filters.append(requests.c.extra_slow_workers == true())
    if not w.owner_trusted:
        filters.append(requests.c.trusted_workers == false())
    if missing_caps(w):
        filters.append(requests.c.required_caps.op("&")(bindparam("missing_caps")) == 0)
    for i in range(len(w.blacklist)):
        filters.append(not_(func.lower(requests.c.prompt).like(bindparam(f"word_{i}"), escape="/")))
    return filters


def missing_caps(w: WorkerProfile) -> int:
    return int(ALL_CAPS & ~w.caps)


def _like(word: str) -> str:
    escaped = word.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def common_params(w: WorkerProfile) -> dict[str, object]:
    params: dict[str, object] = {"wid": w.worker_id, "missing_caps": missing_caps(w)}
    params.update({f"word_{i}": _like(word) for i, word in enumerate(w.blacklist)})
    return params


def common_shape(w: WorkerProfile) -> tuple[object, ...]:
    return (w.kind, w.slow, w.extra_slow, w.owner_trusted, bool(missing_caps(w)), len(w.blacklist))


def models_filter(w: WorkerProfile) -> ColumnElement[bool]:
    if not w.models:
        return requests.c.any_model == true()
    served = exists().where(
        request_models.c.request_id == requests.c.id,
        one_of(request_models.c.model, "models"),
    )
    return or_(requests.c.any_model == true(), served)
