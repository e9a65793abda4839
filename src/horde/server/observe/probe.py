"""A bench-only probe of the pop: how long each step a pop awaits takes, off by default.

`HORDE_POP_PROBE=<file>` installs it at start-up: it wraps the steps a pop awaits (the key lookup, the
queue snapshot, the check-in write, the pooled connection, the claim) and records their durations per
kind, plus the event loop's lag and the garbage collector's pauses, so a slow paced pop shows what it
waited for. Every `INTERVAL` seconds it appends one JSON line (wall time, raw durations in ms) to the
file; `python -m bench local s5 --probe` reads them back. The wrappers are installed only when the
setting is on: with it off the pop runs the unwrapped functions and the probe costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from horde.server import auth
from horde.server.jobs import waiting
from horde.server.jobs.snapshot import STALE_AFTER
from horde.server.state import Horde
from horde.server.workers import service as workers

INTERVAL = 5.0
LAG_TICK = 0.01
_kind: contextvars.ContextVar[str] = contextvars.ContextVar("probe_kind", default="-")
T = TypeVar("T")


class PopProbe:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: defaultdict[str, list[float]] = defaultdict(list)
        self.counts: defaultdict[str, int] = defaultdict(int)
        self._undo: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._gc_started = 0.0

    def add(self, step: str, ms: float) -> None:
        self.samples[f"{_kind.get()}.{step}"].append(round(ms, 3))

    def count(self, what: str) -> None:
        self.counts[f"{_kind.get()}.{what}"] += 1

    def timed(self, step: str, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def wrapper(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.add(step, (time.perf_counter() - started) * 1000)

        return wrapper

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        original = getattr(owner, name)
        setattr(owner, name, value)
        self._undo.append(lambda: setattr(owner, name, original))

    def install(self, horde: Horde) -> None:
        probe = self
        pop_jobs = waiting.pop_jobs  # type: ignore[attr-defined]  # the name waiting calls

        async def timed_pop(horde: Horde, *, kind: str, **kwargs: Any) -> dict[str, Any]:
            token = _kind.set(kind)
            started = time.perf_counter()
            try:
                return await pop_jobs(horde, kind=kind, **kwargs)
            finally:
                probe.add("pop", (time.perf_counter() - started) * 1000)
                _kind.reset(token)

        self._patch(waiting, "pop_jobs", timed_pop)
        self._patch(auth, "_principal", self.timed("key", auth._principal))
        self._patch(workers, "check_in", self.timed("check_in", workers.check_in))
        snapshots = horde.snapshots
        get = snapshots.get

        async def timed_get(kind: str) -> Any:
            # a refresh the pop awaits: none ready, or one past max_age (the cause issue 7 looked for)
            snap = snapshots.current(kind)
            age = horde.clock.now() - snap.taken_at if snap is not None else STALE_AFTER
            in_flight = kind in snapshots._taking
            if age >= STALE_AFTER or (age >= snapshots.max_age and not in_flight):
                probe.count("snapshot_refresh_awaited")
            started = time.perf_counter()
            try:
                return await get(kind)
            finally:
                probe.add("snapshot", (time.perf_counter() - started) * 1000)

        self._patch(snapshots, "get", timed_get)
        self._patch(horde.statements, "claim", self.timed("claim", horde.statements.claim))
        autocommit = horde.db.autocommit

        @contextlib.asynccontextmanager
        async def timed_autocommit() -> AsyncIterator[Any]:
            started = time.perf_counter()
            async with autocommit() as conn:
                probe.add("connection", (time.perf_counter() - started) * 1000)
                yield conn

        self._patch(horde.db, "autocommit", timed_autocommit)
        gc.callbacks.append(self._on_gc)
        self._undo.append(lambda: gc.callbacks.remove(self._on_gc))
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.samples[f"-.gc{info.get('generation', '')}"].append(
                round((time.perf_counter() - self._gc_started) * 1000, 3)
            )

    async def _run(self) -> None:
        """Samples the loop's lag (how late a LAG_TICK sleep wakes) and writes a line per INTERVAL."""
        next_dump = time.monotonic() + INTERVAL
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LAG_TICK)
            self.samples["-.loop_lag"].append(round((time.perf_counter() - started - LAG_TICK) * 1000, 3))
            if time.monotonic() >= next_dump:
                next_dump += INTERVAL
                self.dump()

    def dump(self) -> None:
        line = {"t": time.time(), "samples": dict(self.samples), "counts": dict(self.counts)}
        self.samples, self.counts = defaultdict(list), defaultdict(int)
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.dump()
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
