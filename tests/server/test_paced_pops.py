"""What a paced pop awaits (issue 7, ADR 0013), counted rather than timed: no pop waits for a snapshot
refresh it did not need, no pop waits for a due check-in write, and new work of one kind does not send
another kind's pops to the database. Each test holds the thing a pop must not wait for (a refresh, a
check-in write) behind a gate, and checks that the pops still answer while it is held."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from horde.server.workers import service as workers_service
from tests.helpers import V2

TEXT_POP = f"{V2}/generate/text/pop"
IMAGE_POP = f"{V2}/generate/pop"


def _pop(client: httpx.AsyncClient, key: str, name: str, path: str = TEXT_POP) -> Awaitable[httpx.Response]:
    return client.post(path, json={"name": name}, headers={"apikey": key})


async def _all_answer(pops: list[Awaitable[httpx.Response]]) -> list[httpx.Response]:
    """The pops' answers; fails if any is still waiting once the others are done and the loop is idle
    (a liveness bound, not a timing: the gated work never finishes while the pops run)."""
    tasks = [asyncio.ensure_future(p) for p in pops]
    done, pending = await asyncio.wait(tasks, timeout=20)
    for task in pending:
        task.cancel()
    assert not pending, f"{len(pending)} of {len(tasks)} pops waited for work they did not need"
    return [t.result() for t in done]


def _gate(fn: Callable[..., Awaitable[Any]], gate: asyncio.Event, entered: list[int]) -> Any:
    async def held(*args: Any, **kwargs: Any) -> Any:
        entered.append(1)
        await gate.wait()
        return await fn(*args, **kwargs)

    return held


async def test_pops_do_not_wait_for_a_refresh_in_flight(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    names = [f"paced text worker {i}" for i in range(8)]
    for name in names:  # check in and take the first snapshot
        assert (await _pop(client, api_key, name)).json()["id"] is None
    snapshots, gate, entered = horde.snapshots, asyncio.Event(), []
    take = snapshots._take
    snapshots._take = _gate(take, gate, entered)  # type: ignore[method-assign]
    try:
        awaited = snapshots.refreshes_awaited
        clock.advance(0.9 * horde.settings.snapshot_max_age)  # refresh ahead: starts, held at the gate
        await _all_answer([_pop(client, api_key, names[0])])
        assert entered, "the refresh ahead started"
        clock.advance(horde.settings.snapshot_max_age)  # past max_age, the refresh still in flight
        answers = await _all_answer([_pop(client, api_key, name) for name in names])
        assert [a.json()["id"] for a in answers] == [None] * len(names)
        assert snapshots.refreshes_awaited == awaited
        assert len(entered) == 1  # one refresh in flight, not one per pop
    finally:
        gate.set()
        snapshots._take = take  # type: ignore[method-assign]


async def test_a_due_check_in_is_written_beside_the_pop_once_and_spread(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    names = [f"paced checkin worker {i}" for i in range(6)]
    for name in names:
        assert (await _pop(client, api_key, name)).json()["id"] is None
    debounce = horde.settings.checkin_debounce
    dues = []
    for name in names:
        entry = horde.workers.get(name)
        assert entry is not None
        dues.append(entry.due_at - entry.written_at)
    assert all(debounce <= d <= 1.5 * debounce for d in dues)
    assert len(set(dues)) > 1  # spread: workers that started together do not come due together
    gate, entered = asyncio.Event(), []
    write = workers_service._write
    workers_service._write = _gate(write, gate, entered)  # type: ignore[assignment]
    try:
        started = horde.workers.writes_started
        clock.advance(1.5 * debounce + 1)  # every check-in is due
        await _all_answer([_pop(client, api_key, names[0]) for _ in range(3)])
        assert horde.workers.writes_started == started + 1  # one write per worker at a time
        await _all_answer([_pop(client, api_key, name) for name in names[1:]])
        assert horde.workers.writes_started == started + len(names)
    finally:
        gate.set()
        workers_service._write = write  # type: ignore[assignment]
    await horde.workers.close()  # the held writes finish
    entry = horde.workers.get(names[0])
    assert entry is not None and entry.due_at > clock.now()


async def test_new_text_work_leaves_image_pops_on_the_snapshot(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    assert (await _pop(client, api_key, "paced image worker", IMAGE_POP)).json()["id"] is None
    claims: list[object] = []
    claim = horde.statements.claim

    async def counted(conn: Any, profile: Any, **kwargs: Any) -> Any:
        claims.append(profile.kind)
        return await claim(conn, profile, **kwargs)

    horde.statements.claim = counted  # type: ignore[method-assign]
    try:
        image_version = horde.notifier.work_version("image")
        body = {"prompt": "text only"}
        accepted = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
        assert accepted.status_code == 202
        assert horde.notifier.work_version("image") == image_version
        assert (await _pop(client, api_key, "paced image worker", IMAGE_POP)).json()["id"] is None
        assert "image" not in claims  # answered from the image snapshot: nothing new of its kind
    finally:
        horde.statements.claim = claim  # type: ignore[method-assign]


async def test_pops_of_one_owner_share_one_key_lookup(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    names = [f"paced keyed worker {i}" for i in range(6)]
    for name in names:
        assert (await _pop(client, api_key, name)).json()["id"] is None
    clock.advance(60)  # the key's cache entry has expired (the snapshot too: one refresh)
    lookups = horde.users.lookups
    answers = await _all_answer([_pop(client, api_key, name) for name in names])
    assert [a.status_code for a in answers] == [200] * len(names)
    assert horde.users.lookups == lookups + 1  # one query for the key, not one per pop
