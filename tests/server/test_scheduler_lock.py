"""The scheduler's advisory lock: two schedulers (two hordes) on one PostgreSQL database run a task
once at a time; other tasks are not held up, and the lock is free again when the run ends."""

from __future__ import annotations

import asyncio

import pytest

from horde.server.app import build_horde, close_horde
from horde.server.catalog import ModelCatalog
from horde.server.kit.clock import FakeClock
from horde.server.scheduler import Task, run_once
from horde.server.state import Horde

GUARD = 10.0  # a wait this long has failed


@pytest.mark.committed
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_schedulers_run_each_task_once(
    horde: Horde, catalog: ModelCatalog, clock: FakeClock
) -> None:
    other = await build_horde(horde.settings, clock=clock, migrate=False, catalog=catalog)
    entered, release = asyncio.Event(), asyncio.Event()
    runs: list[Horde] = []

    async def slow(h: Horde) -> int:
        runs.append(h)
        entered.set()
        await release.wait()
        return 7

    async def quick(h: Horde) -> int:
        return 1

    held = Task("test_held", lambda h: 60.0, slow)
    try:
        first = asyncio.create_task(run_once(horde, held))
        await asyncio.wait_for(entered.wait(), GUARD)
        assert await asyncio.wait_for(run_once(other, held), GUARD) is None  # skipped: running
        assert await run_once(other, Task("test_free", lambda h: 60.0, quick)) == 1  # its own lock
        release.set()
        assert await asyncio.wait_for(first, GUARD) == 7
        release.clear()
        entered.clear()
        second = asyncio.create_task(run_once(other, held))  # the lock is free again after the run
        await asyncio.wait_for(entered.wait(), GUARD)
        release.set()
        assert await asyncio.wait_for(second, GUARD) == 7
        assert runs == [horde, other]
    finally:
        release.set()
        await close_horde(other)
