"""The horde's status: active models, performance, modes, news and the heartbeat (SEMANTICS.md 1.8).

Invariants: every answer comes from the queue snapshot or a few aggregate queries, never from a scan
per model or per worker, and is kept for a few seconds on this node (the reference caches these
responses too), so clients polling them cost little.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from horde import __version__
from horde.contract import ActiveModel, HeartbeatResponse, HordePerformance, Newspiece
from horde.contract.rc import RC
from horde.server.catalog import is_special_model
from horde.server.documents import DEFAULT_NEWS
from horde.server.errors import HordeError
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.models import Job, JobState, Request
from horde.server.kit.answers import Answers
from horde.server.kit.orm import table, utc
from horde.server.state import Horde
from horde.server.workers.models import Worker

log = logging.getLogger(__name__)

T = TypeVar("T")

jobs = table(Job)
requests = table(Request)
workers = table(Worker)

ANSWER_TTL = 2.0  # models, performance (the reference: 2 s on models)
NEWS_TTL = 60.0
NO_WORKER_ETA = 10000  # the reference's eta for a model nobody serves
PAST_MINUTE = 60.0
MODEL_TYPES = ("image", "text")
MODEL_STATES = ("known", "custom", "all")


def node_answers(horde: Horde) -> Answers:
    """This horde's node-local answer cache."""
    return horde.answers


@dataclass
class _ModelStat:
    count: int = 0
    speeds: list[float] = field(default_factory=list)
    capacity: float = 0.0  # things per second of the workers serving it, all threads
    queued: float = 0.0
    jobs: int = 0


async def _model_table(horde: Horde, model_type: str) -> list[ActiveModel]:
    snap = await horde.snapshots.get(model_type)
    stats: defaultdict[str, _ModelStat] = defaultdict(_ModelStat)
    for worker in snap.online:
        for name in worker.models:
            stat = stats[name]
            stat.count += worker.threads
            stat.speeds.append(worker.speed)
            stat.capacity += worker.speed * worker.threads
    for q in snap.queue:
        for name in q.models:  # requests for any model count toward none, as on the reference
            stats[name].queued += q.things * q.queued
            stats[name].jobs += q.queued
    table = []
    for name, stat in sorted(stats.items()):
        if is_special_model(name):
            continue
        if not stat.queued:
            eta = 0
        else:
            eta = int(stat.queued / stat.capacity) if stat.capacity > 0 else NO_WORKER_ETA
        performance = sum(stat.speeds) / len(stat.speeds) if stat.speeds else 0.0
        table.append(
            ActiveModel.model_validate({
                "name": name, "count": stat.count, "performance": round(performance, 2),
                "queued": round(stat.queued, 2), "jobs": stat.jobs, "eta": eta, "type": model_type,
            })
        )  # fmt: skip
    return table


async def active_models(
    horde: Horde, *, model_type: str, min_count: int | None, max_count: int | None, model_state: str
) -> list[ActiveModel]:
    """Models served by online workers or asked for by queued requests, with their queue and eta."""
    if model_type not in MODEL_TYPES:
        raise HordeError(RC.BadRequest, "type must be 'image' or 'text'")
    if model_state not in MODEL_STATES:
        raise HordeError(RC.BadRequest, "model_state must be 'known', 'custom' or 'all'")
    table = await node_answers(horde).get(
        ("models", model_type), ANSWER_TTL, lambda: _model_table(horde, model_type)
    )
    result = []
    for model in table:
        if model_state != "all" and horde.catalog.is_known(model_type, model.name) != (
            model_state == "known"
        ):
            continue
        if (min_count is not None and model.count < min_count) or (
            max_count is not None and model.count > max_count
        ):
            continue
        result.append(model)
    return result


async def model_status(horde: Horde, *, name: str) -> list[ActiveModel]:
    """The statistics of one known model, of whichever type knows it ([] when none is active)."""
    found = []
    for model_type in MODEL_TYPES:
        if not horde.catalog.is_known(model_type, name):
            continue
        table = await active_models(
            horde, model_type=model_type, min_count=None, max_count=None, model_state="all"
        )
        found += [m for m in table if m.name == name]
    return found


@dataclass(frozen=True, slots=True)
class _PerfFields:
    """Which HordePerformance keys a kind's numbers go to (None: the reference reports none)."""

    jobs: str | None
    things: str
    past_minute: str | None
    workers: str
    threads: str


_PERFORMANCE_FIELDS = {
    "image": _PerfFields(
        "queued_requests",
        "queued_megapixelsteps",
        "past_minute_megapixelsteps",
        "worker_count",
        "thread_count",
    ),
    "text": _PerfFields(
        "queued_text_requests",
        "queued_tokens",
        "past_minute_tokens",
        "text_worker_count",
        "text_thread_count",
    ),
    "alchemy": _PerfFields(None, "queued_forms", None, "interrogator_count", "interrogator_thread_count"),
}


async def _performance(conn: AsyncConnection, horde: Horde) -> HordePerformance:
    now = horde.clock.now()
    per_request = (
        select(jobs.c.request_id, jobs.c.state, func.count().label("n"))
        .where(
            or_(
                jobs.c.state.in_([JobState.QUEUED, JobState.PROCESSING]),
                and_(jobs.c.state == JobState.DONE, jobs.c.finished_at >= now - PAST_MINUTE),
            )
        )
        .group_by(jobs.c.request_id, jobs.c.state)
        .subquery()
    )
    work = select(requests.c.kind, requests.c.payload, per_request.c.state, per_request.c.n).join(
        per_request, per_request.c.request_id == requests.c.id
    )
    online = (
        select(workers.c.kind, func.count(), func.coalesce(func.sum(workers.c.threads), 0))
        .where(
            workers.c.last_check_in >= utc(now - horde.settings.worker_online_window),
            workers.c.paused.is_(False),
        )
        .group_by(workers.c.kind)
    )
    counts: Counter[str] = Counter()
    amounts: defaultdict[str, float] = defaultdict(float)
    for kind, payload, state, n in await conn.execute(work):
        names = _PERFORMANCE_FIELDS[kind]
        things = KINDS[kind].things(payload) * n
        if state == JobState.DONE:
            if names.past_minute:
                amounts[names.past_minute] += things
            continue
        amounts[names.things] += things
        if names.jobs:
            counts[names.jobs] += int(n)
    for kind, count, threads in await conn.execute(online):
        counts[_PERFORMANCE_FIELDS[kind].workers] += int(count)
        counts[_PERFORMANCE_FIELDS[kind].threads] += int(threads)
    body: dict[str, Any] = dict.fromkeys(HordePerformance.model_fields, 0)
    body.update(counts)
    body.update({key: round(value, 2) for key, value in amounts.items()})
    return HordePerformance.model_validate(body)


async def performance(conn: AsyncConnection, *, horde: Horde) -> HordePerformance:
    """Queued and processing work, online workers and threads, work done in the past minute."""
    return await node_answers(horde).get(("performance",), ANSWER_TTL, lambda: _performance(conn, horde))


def _read_news(path: str) -> list[Newspiece]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("news file %s could not be read: %s", path, exc)
        return []
    if not isinstance(raw, list):
        log.warning("news file %s is not a JSON list", path)
        return []
    news = []
    for i, item in enumerate(raw):
        try:
            news.append(Newspiece.model_validate(item))
        except ValidationError as exc:
            log.warning("news file %s: item %d skipped: %s", path, i, exc.errors()[0]["msg"])
    return news


async def news(horde: Horde) -> list[Newspiece]:
    """The operator's news pieces (`HORDE_NEWS_FILE`, a JSON list, in the file's order); without one,
    the packaged first item (an empty feed looks broken in clients)."""
    path = horde.settings.news_file or str(DEFAULT_NEWS)

    async def compute() -> list[Newspiece]:
        return await asyncio.to_thread(_read_news, path)

    return await node_answers(horde).get(("news",), NEWS_TTL, compute)


async def heartbeat(horde: Horde) -> HeartbeatResponse:
    """This node's health: the database reachable, and what of the model reference failed to load.

    A probe, not a request's unit of work: it opens its own connection because it must answer (DOWN)
    when none can be had (ADR 0006)."""
    try:
        async with horde.db.autocommit() as conn:
            await conn.execute(text("SELECT 1"))
        db_ok = True
    except Exception:
        db_ok = False
    redis_ok = horde.redis_health.healthy if horde.redis_health and horde.settings.redis_url else None
    return HeartbeatResponse(
        message="DOWN" if not db_ok else ("DEGRADED" if redis_ok is False else "OK"),
        version=__version__,
        db_connection=db_ok,
        redis_connection=redis_ok,  # without Redis, limits and wake-ups are this node's own
        model_reference_problems=list(horde.catalog.problems) or None,
    )
