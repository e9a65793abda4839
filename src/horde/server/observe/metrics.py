"""The horde's Prometheus series, and the places they are fed from (all at the boundary).

Per request: the middleware (`observe/middleware.py`). Per pop: the pop route hands its answer to
`observe_pop`. Per scheduled task: the scheduler's loop. At scrape time: queue depth, workers online
and pool use are read from the horde (`collect`), and the loop-lag probe runs beside the app.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # CPU, memory and open files of this process

REQUEST_SECONDS = Histogram(
    "horde_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template.",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
POPS = Counter(
    "horde_pops_total",
    "Worker pops by kind and outcome (job or empty).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
POP_SKIPPED = Counter(
    "horde_pop_skipped_total",
    "Queued requests an empty-handed pop passed over, by the reason given to the worker.",
    ["kind", "reason"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "horde_queue_depth",
    "Jobs waiting for a worker, by kind (read at scrape time).",
    ["kind"],
    registry=REGISTRY,
)
WORKERS_ONLINE = Gauge(
    "horde_workers_online", "Workers seen within the online window, by kind.", ["kind"], registry=REGISTRY
)
DB_POOL = Gauge(
    "horde_db_pool_connections",
    "This process's database pool: connections by state.",
    ["state"],
    registry=REGISTRY,
)
LOOP_LAG = Gauge(
    "horde_event_loop_lag_seconds",
    "How late the last periodic wake-up of this process's event loop ran.",
    registry=REGISTRY,
)
TASK_SECONDS = Histogram(
    "horde_scheduled_task_duration_seconds",
    "Duration of each run of a periodic task (runs skipped because another node held it excluded).",
    ["task"],
    registry=REGISTRY,
    buckets=(0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300),
)
TASK_FAILURES = Counter(
    "horde_scheduled_task_failures_total", "Runs of a periodic task that raised.", ["task"], registry=REGISTRY
)
CACHE_HITS = Counter(
    "horde_cache_hits_total",
    "GET answers served from the answer cache (ADR 0026), by tier: local (this node) or shared (Redis).",
    ["tier"],
    registry=REGISTRY,
)
CACHE_MISSES = Counter(
    "horde_cache_misses_total",
    "Lookups of the answer cache that neither tier answered (the route computed the answer).",
    registry=REGISTRY,
)


def observe_pop(kind: str, answer: dict[str, Any]) -> None:
    """Count one pop answer: its outcome and, for an empty one, the reasons it gives the worker."""
    if answer.get("id") or answer.get("ids") or answer.get("forms"):
        POPS.labels(kind, "job").inc()
        return
    POPS.labels(kind, "empty").inc()
    for reason, count in (answer.get("skipped") or {}).items():
        if isinstance(count, int | float) and count:
            POP_SKIPPED.labels(kind, reason).inc(count)


class LoopLagProbe:
    """Sleeps `interval` over and over and records how late each wake-up came (a blocked loop shows)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag-probe")

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            LOOP_LAG.set(max(0.0, time.perf_counter() - start - self.interval))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
