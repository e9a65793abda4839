"""Every condition a queued request must meet for a worker to take it, each declared once.

A `Condition` carries both forms of one rule: its SQL expression (a part of the claim's WHERE, with
bind parameters), its bind values, its part of the claim statement's cache key (what in the worker
changes the expression's structure), and its Python predicate with the `skipped` key it counts under
(the queue snapshot's twin of the claim: empty pops, `skipped`, `is_possible`, queue positions). The
claim (`claim.py`) and `skip_reason` are derived from the same tuple per kind, in the same order, so
they agree by construction; `tests/server/test_matching_twins.py` runs both forms over varied pairs.

The first condition that refuses gives the `skipped` key, so the order of `CONDITIONS[kind]` is the
reference's order of checks (SEMANTICS.md 3.3).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, func, literal_column, not_, or_, true

from horde.server.jobs.models import Job, Request, RequestModel, RequestWorker
from horde.server.jobs.records import QueuedRequest, WorkerProfile
from horde.server.kit.orm import table
from horde.server.kit.sql import one_of
from horde.server.workers.capabilities import ALL_CAPS, DEFAULT_SKIP_KEY, SKIP_KEY

jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)
request_workers = table(RequestWorker)

Predicate = Callable[[QueuedRequest, WorkerProfile], bool]


def _no_binds(w: WorkerProfile) -> Mapping[str, object]:
    return {}


def _one_shape(w: WorkerProfile) -> Hashable:
    return None


@dataclass(frozen=True, slots=True)
class Condition:
    """One matching rule in SQL and in Python (see the module docstring).

    `sql(w)` is None when the rule cannot refuse anything for this worker; then `refuses(q, w)` must be
    False for every request. The structure of `sql(w)` may depend only on `shape(w)`.
    """

    skipped: str
    refuses: Predicate
    sql: Callable[[WorkerProfile], ColumnElement[bool] | None]
    binds: Callable[[WorkerProfile], Mapping[str, object]] = _no_binds
    shape: Callable[[WorkerProfile], Hashable] = _one_shape
    key_of: Callable[[QueuedRequest, WorkerProfile], str] | None = None  # when the key depends on q

    def reason(self, q: QueuedRequest, w: WorkerProfile) -> str | None:
        """The `skipped` key when this rule keeps `w` from `q`, else None."""
        if not self.refuses(q, w):
            return None
        return self.skipped if self.key_of is None else self.key_of(q, w)


def _listed_sql(w: WorkerProfile) -> ColumnElement[bool]:
    listed = exists().where(
        request_workers.c.request_id == requests.c.id, request_workers.c.worker_id == bindparam("wid")
    )
    return or_(
        requests.c.has_worker_list == false(),
        and_(requests.c.worker_blacklist == false(), listed),
        and_(requests.c.worker_blacklist == true(), not_(listed)),
    )


WORKER_LIST = Condition(
    "worker_id",
    refuses=lambda q, w: bool(q.worker_ids) and (w.worker_id in q.worker_ids) == q.worker_blacklist,
    sql=_listed_sql,
    binds=lambda w: {"wid": w.worker_id},
)
SLOW = Condition(
    "performance",
    refuses=lambda q, w: w.slow and not q.slow_workers,
    sql=lambda w: requests.c.slow_workers == true() if w.slow else None,
    shape=lambda w: w.slow,
)
EXTRA_SLOW = Condition(
    "performance",
    refuses=lambda q, w: w.extra_slow and not q.extra_slow_workers,
    sql=lambda w: requests.c.extra_slow_workers == true() if w.extra_slow else None,
    shape=lambda w: w.extra_slow,
)
TRUSTED = Condition(
    "untrusted",
    refuses=lambda q, w: q.trusted_workers and not w.owner_trusted,
    sql=lambda w: None if w.owner_trusted else requests.c.trusted_workers == false(),
    shape=lambda w: w.owner_trusted,
)


def missing_caps(w: WorkerProfile) -> int:
    return int(ALL_CAPS & ~w.caps)


def _caps_key(q: QueuedRequest, w: WorkerProfile) -> str:
    missing = q.required_caps & missing_caps(w)
    return next((key for cap, key in SKIP_KEY.items() if missing & cap), DEFAULT_SKIP_KEY)


CAPABILITIES = Condition(
    DEFAULT_SKIP_KEY,
    refuses=lambda q, w: bool(q.required_caps & missing_caps(w)),
    sql=lambda w: (
        requests.c.required_caps.op("&")(bindparam("missing_caps")) == 0 if missing_caps(w) else None
    ),
    binds=lambda w: {"missing_caps": missing_caps(w)},
    shape=lambda w: bool(missing_caps(w)),
    key_of=_caps_key,
)


def _like(word: str) -> str:
    escaped = word.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _blacklist_sql(w: WorkerProfile) -> ColumnElement[bool] | None:
    if not w.blacklist:
        return None
    lowered = func.lower(requests.c.prompt)
    return and_(*[not_(lowered.like(bindparam(f"word_{i}"), escape="/")) for i in range(len(w.blacklist))])


BLACKLIST = Condition(
    "blacklist",
    refuses=lambda q, w: bool(w.blacklist) and any(word in q.prompt.lower() for word in w.blacklist),
    sql=_blacklist_sql,
    binds=lambda w: {f"word_{i}": _like(word) for i, word in enumerate(w.blacklist)},
    shape=lambda w: len(w.blacklist),
)


def _models_sql(w: WorkerProfile) -> ColumnElement[bool]:
    served = exists().where(
        request_models.c.request_id == requests.c.id, one_of(request_models.c.model, "models")
    )
    if w.serves_special:
        return served
    if not w.models:
        return requests.c.any_model == true()
    return or_(requests.c.any_model == true(), served)


def _models_refuse(q: QueuedRequest, w: WorkerProfile) -> bool:
    # a request for any model goes to workers that serve no special model (SEMANTICS.md 3.3)
    if q.any_model and not w.serves_special:
        return False
    return not (q.models & w.models)


MODELS = Condition(
    "models",
    refuses=_models_refuse,
    sql=_models_sql,
    binds=lambda w: {"models": sorted(w.models)},
    shape=lambda w: (bool(w.models), w.serves_special),
)
MAX_PIXELS = Condition(
    "max_pixels",
    refuses=lambda q, w: q.pixels > w.max_pixels,
    sql=lambda w: requests.c.pixels <= bindparam("max_pixels"),
    binds=lambda w: {"max_pixels": w.max_pixels},
)
NSFW = Condition(
    "nsfw",
    refuses=lambda q, w: q.nsfw and not w.nsfw,
    sql=lambda w: None if w.nsfw else requests.c.nsfw == false(),
    shape=lambda w: w.nsfw,
)
MAX_LENGTH = Condition(
    "max_length",
    refuses=lambda q, w: q.max_length > w.max_length,
    sql=lambda w: requests.c.max_length <= bindparam("max_length"),
    binds=lambda w: {"max_length": w.max_length},
)
MAX_CONTEXT_LENGTH = Condition(
    "max_context_length",
    refuses=lambda q, w: q.max_context_length > w.max_context_length,
    sql=lambda w: requests.c.max_context_length <= bindparam("max_context_length"),
    binds=lambda w: {"max_context_length": w.max_context_length},
)
# `allow_unsafe_ipaddr=false`: no requests sent from an unsafe IP (the reputation lookup's word)
UNSAFE_IP = Condition(
    "unsafe_ip",
    refuses=lambda q, w: q.unsafe_ip and not w.allow_unsafe_ip,
    sql=lambda w: None if w.allow_unsafe_ip else requests.c.unsafe_ip == false(),
    shape=lambda w: w.allow_unsafe_ip,
)
# `limit_max_steps`: no requests with more (accurate) steps than the mean of a requested model's min
# and max steps (computed when the request is stored, `requests.over_average_steps`)
STEP_COUNT = Condition(
    "step_count",
    refuses=lambda q, w: w.limit_max_steps and q.over_average_steps,
    sql=lambda w: requests.c.over_average_steps == false() if w.limit_max_steps else None,
    shape=lambda w: w.limit_max_steps,
)


def _softprompt_refuses(q: QueuedRequest, w: WorkerProfile) -> bool:
    if not q.softprompt or "" in w.softprompts:
        return False
    return not any(sp in q.softprompt for sp in w.softprompts)


def _softprompt_sql(w: WorkerProfile) -> ColumnElement[bool] | None:
    if "" in w.softprompts:
        return None
    held = [requests.c.softprompt.like(bindparam(f"sp_{i}"), escape="/") for i in range(len(w.softprompts))]
    return or_(requests.c.softprompt == literal_column("''"), *held)


# A text request's `softprompt` needs a worker listing it (a part of it, as the reference compares; both
# lowercased); a worker listing "" takes any (it can leave the softprompt out).
SOFTPROMPT = Condition(
    "matching_softprompt",
    refuses=_softprompt_refuses,
    sql=_softprompt_sql,
    binds=lambda w: (
        {} if "" in w.softprompts else {f"sp_{i}": _like(sp) for i, sp in enumerate(w.softprompts)}
    ),
    shape=lambda w: -1 if "" in w.softprompts else len(w.softprompts),
)
# "forms" is no reported key: an alchemy worker never asked for forms it does not serve.
FORMS = Condition(
    "forms",
    refuses=lambda q, w: not (q.forms & w.forms),
    sql=lambda w: one_of(jobs.c.form, "forms") if w.forms else false(),
    binds=lambda w: {"forms": sorted(w.forms)},
    shape=lambda w: bool(w.forms),
)
MAX_TILES = Condition(
    "forms",
    refuses=lambda q, w: q.tiles > w.max_tiles,
    sql=lambda w: requests.c.tiles <= bindparam("max_tiles"),
    binds=lambda w: {"max_tiles": w.max_tiles},
)

# A worker's `require_upfront_kudos` (SEMANTICS.md 4.4): only requests whose requester could pay them
# upfront. The fact is the request's own column, fixed when it was queued, so the claim and the queue
# snapshot read the same immutable value (ADR 0023 says why not the live balance).
UPFRONT_KUDOS = Condition(
    "kudos",
    refuses=lambda q, w: w.require_upfront_kudos and not q.upfront_covered,
    sql=lambda w: requests.c.upfront_covered == true() if w.require_upfront_kudos else None,
    shape=lambda w: w.require_upfront_kudos,
)

_SHARED = (WORKER_LIST, SLOW, EXTRA_SLOW, TRUSTED, CAPABILITIES)
CONDITIONS: dict[str, tuple[Condition, ...]] = {
    "image": (MAX_PIXELS, MODELS, *_SHARED, UNSAFE_IP, NSFW, STEP_COUNT, BLACKLIST, UPFRONT_KUDOS),
    "text": (MAX_LENGTH, MAX_CONTEXT_LENGTH, MODELS, *_SHARED, BLACKLIST, SOFTPROMPT, UPFRONT_KUDOS),
    "alchemy": (FORMS, MAX_TILES, *_SHARED, BLACKLIST),
}
NOT_REPORTED = frozenset({"forms"})  # keys a refusal does not count under in `skipped`


def skip_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    """The `skipped` key of the first condition that keeps worker `w` from request `q`, or None."""
    for condition in CONDITIONS[w.kind]:
        if condition.refuses(q, w):
            return condition.reason(q, w)
    return None
