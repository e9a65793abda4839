"""The worker loop: one pop loop per kind, jobs run concurrently up to each kind's `threads`.

Lifecycle: ``await worker.start()`` loads the backends and starts popping; ``worker.stop()`` stops
popping and lets held jobs finish (each still bounded by its ttl, and by ``shutdown_timeout`` when set);
``worker.stop(force=True)`` (a second signal) abandons them at once. Every held job ends submitted or
reported faulted. ``await worker.wait()`` returns when all of that is done; ``await worker.close()``
releases the backends. ``burst`` mode ends a kind's loop at its first empty pop (deterministic tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from horde.client import (
    AbortedGen,
    HordeClient,
    HordeError,
    RequestRejected,
    TooManyRequests,
    WorkerMaintenance,
)
from horde.contract import ResponseModelMessagePop
from horde.worker.backends import load_backends
from horde.worker.backoff import Backoff
from horde.worker.jobs import Handler, Job, Popped

__all__ = ["Worker", "WorkerError", "WorkerOptions"]

log = logging.getLogger("horde.worker")

# Refusals of a pop that pass with time; every other 4xx means this worker cannot work as configured.
TRANSIENT_RCS = frozenset({"TimeoutIP", "TooManyNewIPs", "MaintenanceMode"})


class WorkerError(Exception):
    """The worker cannot run (nothing to serve)."""


@dataclass(frozen=True)
class WorkerOptions:
    long_poll: float = 20.0  # seconds of `Horde-Wait` on pop; 0 disables
    ttl_margin: float = 2.0  # give up on a job this long before its ttl, to submit the fault in time
    shutdown_timeout: float | None = None  # on stop, wait this long for held jobs (None: their ttl)
    max_backoff: float = 60.0
    idle_backoff: float = 5.0  # longest wait between empty pops when the horde does not long-poll
    burst: bool = False


@dataclass(eq=False)
class _Lane:
    """A kind's loop state."""

    handler: Handler
    used: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    errors: Backoff = field(default_factory=Backoff)
    idle: Backoff = field(default_factory=lambda: Backoff(base=0.5, cap=5.0))
    faults: Backoff = field(default_factory=Backoff)
    pause_until: float = 0.0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    fatal: HordeError | None = None

    @property
    def free(self) -> int:
        return self.handler.threads - self.used


@dataclass
class Stats:
    submitted: int = 0
    faulted: int = 0
    lost: int = 0  # neither submitted nor reported: the horde requeues them at their ttl


class Worker:
    """Pops, runs and submits jobs of several kinds against one horde."""

    def __init__(self, client: HordeClient, handlers: list[Handler], options: WorkerOptions | None = None):
        self.client = client
        self.options = options or WorkerOptions()
        self.stats = Stats()
        self._lanes = [self._lane(h) for h in handlers]
        self._stopping = asyncio.Event()
        self._abandon = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._seen_messages: set[str] = set()

    def _lane(self, handler: Handler) -> _Lane:
        cap = self.options.max_backoff
        idle = Backoff(base=min(0.5, self.options.idle_backoff), cap=self.options.idle_backoff)
        return _Lane(handler, errors=Backoff(cap=cap), faults=Backoff(cap=cap), idle=idle)

    @property
    def failed(self) -> bool:
        """Whether every kind stopped on a refusal the worker cannot fix by waiting."""
        return bool(self._lanes) and all(lane.fatal is not None for lane in self._lanes)

    async def start(self) -> None:
        """Load the backends, drop kinds with nothing to offer, start popping."""
        reasons: list[str] = []
        for lane in list(self._lanes):
            handler = lane.handler
            handler.backends, unavailable = await load_backends(handler.backends)
            for name, reason in unavailable.items():
                log.warning("%s backend %s is unavailable: %s", handler.kind, name, reason)
                reasons.append(f"{handler.kind}/{name}: {reason}")
            offers = handler.offers()
            if not offers:
                self._lanes.remove(lane)
                reasons.append(f"{handler.kind}: nothing to serve")
                continue
            log.info(
                "serving %s as %r: %s (threads %d)",
                handler.kind,
                handler.name,
                ", ".join(offers),
                handler.threads,
            )
        if not self._lanes:
            raise WorkerError("no kind can be served: " + "; ".join(reasons))
        self._loops = [
            asyncio.create_task(self._pop_loop(lane), name=f"pop-{lane.handler.kind}") for lane in self._lanes
        ]

    def stop(self, *, force: bool = False) -> None:
        """Stop popping; held jobs finish (``force``: they are abandoned and reported faulted now)."""
        if not self._stopping.is_set():
            log.info(
                "stopping: no new jobs; finishing the %d held", sum(len(lane.tasks) for lane in self._lanes)
            )
        self._stopping.set()
        if force and not self._abandon.is_set():
            log.warning("stopping now: abandoning held jobs")
            self._abandon.set()

    async def wait(self) -> None:
        """Return when every loop has ended and every held job is submitted or reported faulted."""
        await asyncio.gather(*self._loops, return_exceptions=True)
        held = {task for lane in self._lanes for task in lane.tasks}
        if held and self.options.shutdown_timeout is not None:
            _, pending = await asyncio.wait(held, timeout=self.options.shutdown_timeout)
            if pending:
                log.warning("shutdown timeout: abandoning %d jobs", len(pending))
                self._abandon.set()
        if held:
            await asyncio.gather(*held, return_exceptions=True)

    async def close(self) -> None:
        """Release every backend."""
        for lane in self._lanes:
            for backend in lane.handler.backends:
                with contextlib.suppress(Exception):
                    await backend.close()

    async def run(self) -> None:
        """start, wait, close."""
        await self.start()
        try:
            await self.wait()
        finally:
            await self.close()

    # The pop loop ---------------------------------------------------------------------------------
    async def _pop_loop(self, lane: _Lane) -> None:
        while not self._stopping.is_set():
            if not await self._ready(lane):
                break
            asked = time.monotonic()
            try:
                popped = await self._pop(lane)
            except HordeError as exc:
                if self._is_fatal(exc):
                    log.error("%s: the horde refused the pop: %s; this kind stops", lane.handler.kind, exc)
                    lane.fatal = exc
                    break
                delay = lane.errors.next()
                log.warning("%s pop failed: %s; next try in %.1fs", lane.handler.kind, exc, delay)
                await self._sleep(delay)
                continue
            except Exception:  # a defect: keep the worker up, but say so loudly
                delay = lane.errors.next()
                log.exception("%s pop: unexpected error; next try in %.1fs", lane.handler.kind, delay)
                await self._sleep(delay)
                continue
            if popped is None:
                break
            lane.errors.reset()
            self._show(popped.messages)
            if not popped.jobs:
                if self.options.burst and not lane.tasks:
                    break
                await self._idle(lane, time.monotonic() - asked)
                continue
            lane.idle.reset()
            for job in popped.jobs:
                self._hold(lane, job)

    async def _idle(self, lane: _Lane, took: float) -> None:
        """After an empty pop: back off, unless the horde held the pop (long-poll) for a while."""
        held = self.options.long_poll and self.client.long_poll_supported
        if not held or took < min(self.options.long_poll, 1.0):  # a quick empty answer: no hot loop
            await self._sleep(lane.idle.next())

    async def _ready(self, lane: _Lane) -> bool:
        """Wait for a free slot and the end of any fault pause; False when stopping."""
        while lane.free <= 0 and not self._stopping.is_set():
            lane.changed.clear()
            await _first(lane.changed, self._stopping)
        pause = lane.pause_until - time.monotonic()
        if pause > 0:
            await self._sleep(pause)
        return not self._stopping.is_set()

    async def _pop(self, lane: _Lane) -> Popped | None:
        """One pop; a long-polling pop is given up on stop (its job, if any, is requeued at its ttl)."""
        wait = self.options.long_poll or None
        amount = lane.handler.amount(lane.free)
        task = asyncio.create_task(lane.handler.pop(self.client, amount=amount, wait=wait))
        if not (wait and self.client.long_poll_supported):
            return await task
        await _first(task, self._stopping)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None

    @staticmethod
    def _is_fatal(exc: HordeError) -> bool:
        if not isinstance(exc, RequestRejected):
            return False
        return not isinstance(exc, WorkerMaintenance | TooManyRequests) and exc.rc not in TRANSIENT_RCS

    def _show(self, messages: list[ResponseModelMessagePop]) -> None:
        for message in messages:
            if message.id not in self._seen_messages:
                self._seen_messages.add(message.id)
                origin = f" from {message.origin}" if message.origin else ""
                log.warning("message%s: %s", origin, message.message)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=max(seconds, 0))

    # Running one job ------------------------------------------------------------------------------
    def _hold(self, lane: _Lane, job: Job) -> None:
        lane.used += 1
        task = asyncio.create_task(self._run(lane, job), name=job.describe())
        lane.tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            lane.tasks.discard(finished)
            lane.used -= 1
            lane.changed.set()

        task.add_done_callback(done)

    async def _run(self, lane: _Lane, job: Job) -> None:
        try:
            bodies, ok = await self._produce(lane, job)
            for body in bodies:
                await self._submit(lane, job, body, ok=ok)
        except Exception:  # a defect here must not vanish into a task nobody awaits
            log.exception("%s: unexpected error; the horde requeues it at its ttl", job.describe())
            self.stats.lost += 1

    async def _produce(self, lane: _Lane, job: Job) -> tuple[list[BaseModel], bool]:
        """The job's submit bodies, or its faulted bodies when it fails, runs out of ttl or is abandoned."""
        budget = max(job.ttl - self.options.ttl_margin, job.ttl / 2) - (time.monotonic() - job.popped_at)
        work = asyncio.create_task(lane.handler.produce(self.client, job))
        await _first(work, self._abandon, timeout=max(budget, 0))
        if work.done() and not work.cancelled() and work.exception() is None:
            lane.faults.reset()
            lane.pause_until = 0.0
            return work.result(), True
        if work.done():
            why = "was cancelled" if work.cancelled() else f"failed: {work.exception()}"
            delay = lane.faults.next()
            lane.pause_until = time.monotonic() + delay
            log.warning("%s %s; reporting it faulted, next pop in %.1fs", job.describe(), why, delay)
        else:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            why = (
                "abandoned on shutdown"
                if self._abandon.is_set()
                else f"not done within its ttl ({job.ttl:g}s)"
            )
            log.warning("%s %s; reporting it faulted", job.describe(), why)
        return lane.handler.faulted(job), False

    async def _submit(self, lane: _Lane, job: Job, body: BaseModel, *, ok: bool) -> None:
        job_id = getattr(body, "id", "?")
        try:
            result = await lane.handler.submit(self.client, body)
        except AbortedGen:
            log.warning("%s job %s: the horde had already timed it out", lane.handler.kind, job_id)
            self.stats.lost += 1
        except HordeError as exc:
            log.error(
                "%s job %s: submit failed (%s); the horde requeues it at its ttl",
                lane.handler.kind,
                job_id,
                exc,
            )
            self.stats.lost += 1
        else:
            if ok and getattr(body, "state", "ok") != "faulted":
                self.stats.submitted += 1
                note = " (an earlier try had landed)" if result.already_submitted else ""
                log.info("%s job %s submitted: %g kudos%s", lane.handler.kind, job_id, result.reward, note)
            else:
                self.stats.faulted += 1


async def _first(*waitables: Any, timeout: float | None = None) -> None:
    """Wait until any of ``waitables`` (tasks or events) is done/set, or ``timeout`` passes."""
    waiters: list[asyncio.Future[Any]] = []
    helpers: list[asyncio.Task[Any]] = []
    for item in waitables:
        if isinstance(item, asyncio.Event):
            helper = asyncio.create_task(item.wait())
            helpers.append(helper)
            waiters.append(helper)
        else:
            waiters.append(item)
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for helper in helpers:
            helper.cancel()
