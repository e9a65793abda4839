"""Running a load window in several generator processes while sampling the server's CPU clock.

The generator processes are spawned and warmed (imports done) before the window opens, start together
at one monotonic instant, and stop issuing requests at the deadline. The parent only sleeps, reads
/proc/<pid>/stat of the server process (and of the PostgreSQL backends of its database, when known)
at the window's edges, and merges what the children recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.common import Record, merge, own_cpu, process_cpu

ChildFn = Callable[[Any, float, float], Awaitable[Record]]


@dataclass
class Target:
    """The horde under test and what the runner may observe of it."""

    url: str
    server_pid: int | None = None
    pg_dsn: str | None = None  # an asyncpg DSN of any database on the server, to see pg_stat_activity
    pg_db: str | None = None  # the horde's database name: its backends' CPU is the database's cost


class CpuProbe:
    """CPU seconds of the server process and of its database's backends, between two samples."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._server = 0.0
        self._pg: dict[int, float] = {}
        self.server_cpu: float | None = None
        self.pg_cpu: float | None = None

    async def _pg_pids(self) -> list[int]:
        if not (self.target.pg_dsn and self.target.pg_db):
            return []
        conn = await asyncpg.connect(self.target.pg_dsn, timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.target.pg_db,
            )
        finally:
            await conn.close()
        return [int(r["pid"]) for r in rows]

    @staticmethod
    def _cpu_of(pids: list[int]) -> dict[int, float]:
        found = {}
        for pid in pids:
            with contextlib.suppress(OSError):  # gone, or not on this machine
                found[pid] = process_cpu(pid)
        return found

    async def start(self) -> None:
        self._pg = self._cpu_of(await self._pg_pids())
        if self.target.server_pid:
            self._server = process_cpu(self.target.server_pid)

    async def stop(self) -> None:
        if self.target.server_pid:
            self.server_cpu = process_cpu(self.target.server_pid) - self._server
        if self.target.pg_dsn and self.target.pg_db:
            now = self._cpu_of(await self._pg_pids())
            self.pg_cpu = sum(cpu - self._pg.get(pid, 0.0) for pid, cpu in now.items())

    def to_dict(self) -> dict[str, float | None]:
        return {"server_cpu_s": self.server_cpu, "pg_cpu_s": self.pg_cpu}


def _warm(fn_path: str) -> bool:
    _resolve(fn_path)
    time.sleep(0.3)  # hold this process so each warm-up lands on a different one
    return True


def _resolve(fn_path: str) -> ChildFn:
    module, _, name = fn_path.partition(":")
    fn: ChildFn = getattr(importlib.import_module(module), name)
    return fn


def _child(fn_path: str, shard: Any, start_at: float, deadline: float) -> dict[str, Any]:
    import uvloop

    fn = _resolve(fn_path)

    async def main() -> dict[str, Any]:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        cpu = own_cpu()
        rec = await fn(shard, start_at, deadline)
        rec.cpu = own_cpu() - cpu
        return rec.to_dict()

    return uvloop.run(main())


async def run_window(
    target: Target, fn_path: str, shards: list[Any], *, seconds: float
) -> tuple[Record, dict[str, Any]]:
    """Run `fn(shard, start_at, deadline)` in one process per shard for `seconds`; merged record + CPU."""
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=len(shards), mp_context=context) as pool:
        await asyncio.gather(*(loop.run_in_executor(pool, _warm, fn_path) for _ in shards))
        start_at = time.monotonic() + 0.5
        deadline = start_at + seconds
        futures = [loop.run_in_executor(pool, _child, fn_path, s, start_at, deadline) for s in shards]
        probe = CpuProbe(target)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        await probe.start()
        began = time.monotonic()
        parts = await asyncio.gather(*futures)
        ended = time.monotonic()
        await probe.stop()
    rec = merge(parts)
    window = {
        "seconds": ended - began,
        "generator_cpu_s": rec.cpu,
        "generator_procs": len(shards),
        **probe.to_dict(),
    }
    return rec, window


async def measure(target: Target, work: Awaitable[Any]) -> tuple[Any, dict[str, Any]]:
    """Run `work` in this process while sampling the server's CPU (queue filling, set-up phases)."""
    probe = CpuProbe(target)
    await probe.start()
    cpu, began = own_cpu(), time.monotonic()
    result = await work
    ended = time.monotonic()
    await probe.stop()
    return result, {"seconds": ended - began, "generator_cpu_s": own_cpu() - cpu, **probe.to_dict()}


def per_op(window: dict[str, Any], count: int) -> dict[str, float | None]:
    """CPU milliseconds per operation, for the server, its database backends and the generator."""

    def ms(key: str) -> float | None:
        value = window.get(key)
        return None if value is None or not count else value / count * 1000

    return {"server_ms": ms("server_cpu_s"), "pg_ms": ms("pg_cpu_s"), "generator_ms": ms("generator_cpu_s")}


def fmt_cpu(costs: dict[str, float | None], what: str) -> str:
    parts = [f"{label} {costs[key]:.3f}" for key, label in (("server_ms", "server"), ("pg_ms", "postgres"),
             ("generator_ms", "generator")) if costs.get(key) is not None]  # fmt: skip
    return f"CPU ms per {what}: " + (", ".join(parts) if parts else "n/a (give --server-pid)")
