"""SQL building blocks of the claim, shared by the kinds (each kind adds its own in `kinds/`)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, true

from horde.server.jobs.models import Job, Request, RequestModel, RequestWorker
from horde.server.jobs.records import WorkerProfile
from horde.server.kit.orm import table
from horde.server.workers.capabilities import ALL_CAPS

jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)
request_workers = table(RequestWorker)


def worker_list_filter(w: WorkerProfile) -> ColumnElement[bool]:
    listed = exists().where(
        request_workers.c.request_id == requests.c.id, request_workers.c.worker_id == w.worker_id
    )
    return or_(
        requests.c.has_worker_list == false(),
        and_(requests.c.worker_blacklist == false(), listed),
        and_(requests.c.worker_blacklist == true(), not_(listed)),
    )


def common_filters(w: WorkerProfile) -> list[ColumnElement[bool]]:
    filters = [worker_list_filter(w)]
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


def models_filter(w: WorkerProfile) -> ColumnElement[bool]:
    if not w.models:
        return requests.c.any_model == true()
    served = exists().where(
        request_models.c.request_id == requests.c.id, request_models.c.model.in_(sorted(w.models))
    )
    return or_(requests.c.any_model == true(), served)
