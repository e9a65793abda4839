"""Runs every domain's periodic tasks; each run holds an advisory lock, so replicas are safe.

`horde scheduler` runs it as its own process; the embedded mode runs it inside the server's loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from horde.server.errors import database_unavailable
from horde.server.jobs import idempotency
from horde.server.jobs import scheduled as jobs_scheduled
from horde.server.kudos import scheduled as kudos_scheduled
from horde.server.messages import scheduled as messages_scheduled
from horde.server.observe.metrics import TASK_FAILURES, TASK_SECONDS
from horde.server.sharedkeys import scheduled as sharedkeys_scheduled
from horde.server.state import Horde
from horde.server.stats import scheduled as stats_scheduled
from horde.server.styles import scheduled as styles_scheduled
from horde.server.teams import scheduled as teams_scheduled
from horde.server.users import scheduled as users_scheduled
from horde.server.webhooks import scheduled as webhooks_scheduled
from horde.server.workers import scheduled as workers_scheduled

log = logging.getLogger(__name__)


MONTHLY_CHECK_SECONDS = 3600.0  # as the reference: hourly


@dataclass(frozen=True)
class Task:
    name: str
    interval: Callable[[Horde], float]
    run: Callable[[Horde], Awaitable[int]]


TASKS = (
    Task("fold_kudos", lambda h: h.settings.kudos_fold_interval, kudos_scheduled.fold_postings),
    Task("monthly_kudos", lambda h: MONTHLY_CHECK_SECONDS, kudos_scheduled.pay_monthly),
    Task(
        "promote_trusted",
        lambda h: max(h.settings.kudos_fold_interval, 60.0),
        kudos_scheduled.promote_trusted,
    ),
    Task("fold_uptime", lambda h: h.settings.uptime_interval, workers_scheduled.fold_uptime),
    Task("fold_team_events", lambda h: h.settings.kudos_fold_interval, teams_scheduled.fold_team_events),
    Task(
        "fold_shared_key_charges",
        lambda h: h.settings.kudos_fold_interval,
        sharedkeys_scheduled.fold_shared_key_charges,
    ),
    Task("fold_stat_events", lambda h: h.settings.kudos_fold_interval, stats_scheduled.fold_stat_events),
    Task("fold_user_records", lambda h: h.settings.kudos_fold_interval, users_scheduled.fold_user_records),
    Task("fold_style_uses", lambda h: h.settings.kudos_fold_interval, styles_scheduled.fold_style_uses),
    Task("expire_leases", lambda h: min(h.settings.sweep_interval, 60.0), jobs_scheduled.expire_leases),
    Task("expire_requests", lambda h: h.settings.sweep_interval, jobs_scheduled.expire_requests),
    Task("expire_idempotency_keys", lambda h: max(h.settings.sweep_interval, 60.0), idempotency.expire_keys),
    Task("purge_objects", lambda h: max(h.settings.sweep_interval, 60.0), jobs_scheduled.purge_objects),
    Task("deliver_webhooks", lambda h: h.settings.webhook_retry_delay, webhooks_scheduled.deliver_webhooks),
    Task(
        "prune_messages",
        lambda h: max(h.settings.sweep_interval, 60.0),
        messages_scheduled.prune_expired_messages,
    ),
    Task("prune_webhooks", lambda h: max(h.settings.sweep_interval, 60.0), webhooks_scheduled.prune_webhooks),
)


async def run_once(horde: Horde, task: Task) -> int | None:
    """Run one task if no other replica is running it; None when the lock was taken elsewhere."""
    async with horde.db.try_lock(zlib.crc32(f"horde:{task.name}".encode())) as got:
        return await task.run(horde) if got else None


# Tasks that run at once: each holds two connections while it runs (its advisory lock and its work), and
# every task comes due together at start-up; unbounded, they took a small pool from the API's requests.
CONCURRENT_TASKS = 2


async def _loop(horde: Horde, task: Task, slots: asyncio.Semaphore) -> None:
    duration, failures = TASK_SECONDS.labels(task.name), TASK_FAILURES.labels(task.name)
    while True:
        try:
            async with slots:
                started = time.perf_counter()
                done = await run_once(horde, task)
            if done is not None:  # None: another node holds the task's lock and ran it
                duration.observe(time.perf_counter() - started)
            if done:
                log.debug("%s: %s", task.name, done)
        except Exception as exc:  # one failed round must not stop the sweeps
            failures.inc()
            if database_unavailable(exc):  # the next round runs on a reconnected pool
                log.warning("scheduled task %s: database unavailable (%s)", task.name, type(exc).__name__)
            else:
                log.exception("scheduled task %s failed", task.name)
        await asyncio.sleep(task.interval(horde))


class Scheduler:
    def __init__(self, horde: Horde, tasks: tuple[Task, ...] = TASKS) -> None:
        self.horde = horde
        self.tasks = tasks
        self._running: list[asyncio.Task[None]] = []

    def start(self) -> None:
        slots = asyncio.Semaphore(CONCURRENT_TASKS)
        self._running = [asyncio.create_task(_loop(self.horde, t, slots), name=t.name) for t in self.tasks]

    async def stop(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running = []
