"""Server-side waits (`Horde-Wait`): parked pops and status polls answer as soon as something happens.

No sleeps order the steps: the spy on the notifier tells the test when a request has parked, and the
periodic re-check is pushed out of reach, so a lost wake-up, an ignored `Horde-Wait` or a `close` that
does nothing fails the test instead of being covered by the re-check.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from horde.server.jobs import waiting
from horde.server.kit.notify import Notifier
from horde.server.redis import connect_relay
from horde.server.state import Horde
from tests.helpers import V2

GUARD = 20.0  # only a hang guard: a correct server answers at once
# The short waits are 1.5 s, not less: on a loaded machine the first pop alone can outlast a shorter
# wait, and the request would then answer without ever parking.


class WaitSpy:
    """Records the notifier's waits: their timeouts, whether each was woken (True) or not (False), and
    an event set as soon as a request parks."""

    def __init__(self, horde: Horde) -> None:
        self.timeouts: list[float] = []
        self.results: list[bool] = []
        self.parked = asyncio.Event()
        original = horde.notifier.wait

        async def wait(event: asyncio.Event, timeout: float) -> bool:
            self.timeouts.append(timeout)
            self.parked.set()
            woken = await original(event, timeout)
            self.results.append(woken)
            return woken

        horde.notifier.wait = wait  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 2 s re-check would hide a lost wake-up: park for the whole wait instead."""
    monkeypatch.setattr(waiting, "RECHECK", 60.0)


async def test_parked_pop_gets_work_that_arrives(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    headers = {"apikey": api_key, "Horde-Wait": "10"}
    spy = WaitSpy(horde)

    async def request_once_parked() -> None:
        await spy.parked.wait()
        await client.post(f"{V2}/generate/text/async", json={"prompt": "late"}, headers={"apikey": api_key})

    later = asyncio.create_task(request_once_parked())
    pop = client.post(f"{V2}/generate/text/pop", json={"name": "patient worker"}, headers=headers)
    popped = await asyncio.wait_for(pop, GUARD)
    await later
    assert popped.headers["Horde-Wait-Supported"] == "1"
    assert popped.json()["id"] is not None
    assert spy.results == [True]  # it parked once, and the new request woke it


async def test_parked_pop_ends_empty_after_its_wait(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    spy = WaitSpy(horde)
    headers = {"apikey": api_key, "Horde-Wait": "1.5"}
    popped = await client.post(f"{V2}/generate/text/pop", json={"name": "patient worker"}, headers=headers)
    assert popped.json()["id"] is None
    assert popped.headers["Horde-Wait-Supported"] == "1"
    assert spy.results == [False]  # it parked (Horde-Wait was honoured) and nothing woke it
    assert 0 < spy.timeouts[0] <= 1.5


async def test_wait_is_capped_by_the_settings(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    horde.settings.max_wait = 1.5
    spy = WaitSpy(horde)
    headers = {"apikey": api_key, "Horde-Wait": "3600"}
    popped = await client.post(f"{V2}/generate/text/pop", json={"name": "patient worker"}, headers=headers)
    assert popped.json()["id"] is None
    assert spy.results == [False] and 0 < spy.timeouts[0] <= 1.5


async def test_parked_status_answers_when_the_result_arrives(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    keyed = {"apikey": api_key}
    request_id = (await client.post(f"{V2}/generate/text/async", json={"prompt": "x"}, headers=keyed)).json()[
        "id"
    ]
    job = (await client.post(f"{V2}/generate/text/pop", json={"name": "quick worker"}, headers=keyed)).json()
    spy = WaitSpy(horde)

    async def submit_once_parked() -> None:
        await spy.parked.wait()
        body = {"id": job["id"], "generation": "done"}
        await client.post(f"{V2}/generate/text/submit", json=body, headers=keyed)

    later = asyncio.create_task(submit_once_parked())
    poll = client.get(f"{V2}/generate/text/status/{request_id}", headers={"Horde-Wait": "10"})
    status = await asyncio.wait_for(poll, GUARD)
    await later
    assert status.json()["done"] is True
    assert status.json()["generations"][0]["text"] == "done"
    assert status.headers["Horde-Wait-Supported"] == "1"
    assert spy.results == [True]  # the submit woke it; no re-check was needed


async def test_plain_requests_do_not_wait(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    spy = WaitSpy(horde)
    popped = await client.post(
        f"{V2}/generate/text/pop", json={"name": "impatient"}, headers={"apikey": api_key}
    )
    assert popped.json()["id"] is None
    assert spy.results == []


async def test_closing_answers_parked_requests(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    spy = WaitSpy(horde)
    headers = {"apikey": api_key, "Horde-Wait": "30"}
    pop = asyncio.create_task(
        client.post(f"{V2}/generate/text/pop", json={"name": "parked worker"}, headers=headers)
    )
    await spy.parked.wait()
    horde.notifier.close()
    assert horde.notifier.closing
    popped = await asyncio.wait_for(pop, GUARD)
    assert popped.status_code == 200
    assert popped.json()["id"] is None
    assert spy.results == [False]  # answered by the close, without parking again


async def test_closing_notifier_ends_a_wait_at_once() -> None:
    notifier = Notifier()
    waiter = asyncio.create_task(notifier.wait_for_work("text", 3600))
    await asyncio.sleep(0)  # let the waiter park
    notifier.close()
    assert await asyncio.wait_for(waiter, GUARD) is False


async def test_redis_relays_wake_ups_between_nodes(redis_url: str) -> None:
    first, second = Notifier(), Notifier()
    prefix = f"test-{uuid.uuid4().hex}:"
    relays = [await connect_relay(redis_url, prefix=prefix, notifier=n) for n in (first, second)]
    try:
        assert all(relay.subscribed.is_set() for relay in relays)
        waiter = asyncio.create_task(second.wait_for_work("text", GUARD))
        first.work_added("text")
        assert await waiter is True
    finally:
        for relay in relays:
            await relay.stop()
