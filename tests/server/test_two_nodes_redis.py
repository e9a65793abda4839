"""Two API nodes configured as in production: one PostgreSQL database, one Redis (index and prefix of
their own), each app started by its own lifespan (create_app without a horde: the relay, the node
registry). What one node does must be seen by the other at once: a key minted on one works on the
other, a request queued on one is popped on the other even after that node answered an empty pop
(its queue snapshot must learn of the new work through Redis), and a worker parked with `Horde-Wait`
on one is woken by a request queued on the other."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from horde.server.app import create_app
from horde.server.jobs import waiting
from horde.server.state import Horde
from tests import services
from tests.conftest import make_settings
from tests.helpers import V2

GUARD = 20.0  # a hang guard only


class Node:
    def __init__(self, client: httpx.AsyncClient, horde: Horde) -> None:
        self.client = client
        self.horde = horde
        self.woken: list[bool] = []
        self.parked = asyncio.Event()
        original = horde.notifier.wait

        async def wait(event: asyncio.Event, timeout: float) -> bool:
            self.parked.set()
            woken = await original(event, timeout)
            self.woken.append(woken)
            return woken

        horde.notifier.wait = wait  # type: ignore[method-assign]


@pytest.fixture
async def nodes(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Node]]:
    monkeypatch.setattr(waiting, "RECHECK", 60.0)  # a lost wake-up must not be covered by the re-check
    try:
        db = await services.create_postgres_database()
    except (OSError, Exception) as exc:
        services.unavailable("PostgreSQL", exc)
    prefix = f"test-{uuid.uuid4().hex}:"
    try:
        async with AsyncExitStack() as stack:
            result: list[Node] = []
            for _ in range(2):
                # one data dir: the nodes share its object store (the registry refuses two local ones)
                settings = make_settings(db.url, tmp_path, redis_url=redis_url, redis_prefix=prefix)
                app = create_app(settings)
                await stack.enter_async_context(app.router.lifespan_context(app))
                transport = httpx.ASGITransport(
                    app=app, client=("127.0.0.1", 12345), raise_app_exceptions=False
                )
                client = await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver")
                )
                result.append(Node(client, app.state.horde))
            yield result
    finally:
        await services.drop_postgres_database(db)


async def _key(node: Node, **body: Any) -> str:
    response = await node.client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


async def _request(node: Node, key: str, prompt: str) -> str:
    body, headers = {"prompt": prompt}, {"apikey": key}
    response = await node.client.post(f"{V2}/generate/text/async", json=body, headers=headers)
    assert response.status_code == 202, response.text
    request_id: str = response.json()["id"]
    return request_id


async def test_a_key_minted_on_one_node_works_on_the_other(nodes: list[Node]) -> None:
    a, b = nodes
    key = await _key(a, username="shared", oauth_id="oauth-shared", kudos=123)
    found = await b.client.get(f"{V2}/find_user", headers={"apikey": key})
    assert found.status_code == 200, found.text
    assert found.json()["username"].startswith("shared#") and found.json()["kudos"] == 123


async def test_a_request_queued_on_one_node_is_popped_on_the_other(nodes: list[Node]) -> None:
    a, b = nodes
    key = await _key(a)
    headers = {"apikey": key}
    # b answers an empty pop first: its queue snapshot says "nothing queued" until it hears otherwise
    empty = await b.client.post(f"{V2}/generate/text/pop", json={"name": "worker b"}, headers=headers)
    assert empty.json()["id"] is None, empty.text
    heard = b.horde.notifier.watch_work("text")
    request_id = await _request(a, key, "from node a")
    # the relay is pub/sub: b hears of the new work moments later (a lost message fails here)
    await asyncio.wait_for(heard.wait(), GUARD)
    popped = await b.client.post(f"{V2}/generate/text/pop", json={"name": "worker b"}, headers=headers)
    assert popped.status_code == 200, popped.text
    assert popped.json()["payload"]["prompt"] == "from node a"
    # and the status is the same on both nodes
    for node in nodes:
        status = (await node.client.get(f"{V2}/generate/text/status/{request_id}")).json()
        assert status["processing"] == 1 and status["waiting"] == 0, status


async def test_a_worker_parked_on_one_node_is_woken_by_a_request_on_the_other(nodes: list[Node]) -> None:
    a, b = nodes
    key = await _key(a)

    async def request_once_parked() -> None:
        await b.parked.wait()
        await _request(a, key, "wake up")

    later = asyncio.create_task(request_once_parked())
    started = time.monotonic()
    pop = b.client.post(
        f"{V2}/generate/text/pop", json={"name": "patient"}, headers={"apikey": key, "Horde-Wait": "15"}
    )
    popped = await asyncio.wait_for(pop, GUARD)
    await later
    assert popped.json()["payload"]["prompt"] == "wake up", popped.text
    assert b.woken == [True]  # parked once and woken by the other node's request, not by its timeout
    assert time.monotonic() - started < 15
