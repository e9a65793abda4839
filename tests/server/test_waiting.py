"""Server-side waits (`Horde-Wait`): parked pops and status polls answer as soon as something happens."""

from __future__ import annotations

import asyncio

import httpx

from horde.server.kit.notify import Notifier
from horde.server.redis import connect_relay
from horde.server.state import Horde
from tests.helpers import V2


class WaitSpy:
    """Records the notifier's waits and whether each was woken (True) or timed out (False)."""

    def __init__(self, horde: Horde) -> None:
        self.results: list[bool] = []
        original = horde.notifier.wait

        async def wait(event: asyncio.Event, timeout: float) -> bool:
            woken = await original(event, timeout)
            self.results.append(woken)
            return woken

        horde.notifier.wait = wait  # type: ignore[method-assign]


async def test_parked_pop_gets_work_that_arrives(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    headers = {"apikey": api_key, "Horde-Wait": "10"}
    spy = WaitSpy(horde)

    async def request_later() -> None:
        await asyncio.sleep(0.3)
        await client.post(f"{V2}/generate/text/async", json={"prompt": "late"}, headers={"apikey": api_key})

    later = asyncio.create_task(request_later())
    popped = await client.post(f"{V2}/generate/text/pop", json={"name": "patient worker"}, headers=headers)
    await later
    assert popped.headers["Horde-Wait-Supported"] == "1"
    assert popped.json()["id"] is not None
    assert True in spy.results  # it parked, and the new request woke it


async def test_parked_pop_ends_empty_after_its_wait(client: httpx.AsyncClient, api_key: str) -> None:
    headers = {"apikey": api_key, "Horde-Wait": "0.3"}
    popped = await client.post(f"{V2}/generate/text/pop", json={"name": "patient worker"}, headers=headers)
    assert popped.json()["id"] is None


async def test_parked_status_answers_when_the_result_arrives(client: httpx.AsyncClient, api_key: str) -> None:
    keyed = {"apikey": api_key}
    request_id = (await client.post(f"{V2}/generate/text/async", json={"prompt": "x"}, headers=keyed)).json()[
        "id"
    ]
    job = (await client.post(f"{V2}/generate/text/pop", json={"name": "quick worker"}, headers=keyed)).json()

    async def submit_later() -> None:
        await asyncio.sleep(0.3)
        body = {"id": job["id"], "generation": "done"}
        await client.post(f"{V2}/generate/text/submit", json=body, headers=keyed)

    later = asyncio.create_task(submit_later())
    status = await client.get(f"{V2}/generate/text/status/{request_id}", headers={"Horde-Wait": "10"})
    await later
    assert status.json()["done"] is True
    assert status.headers["Horde-Wait-Supported"] == "1"


async def test_plain_requests_do_not_wait(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    spy = WaitSpy(horde)
    popped = await client.post(
        f"{V2}/generate/text/pop", json={"name": "impatient"}, headers={"apikey": api_key}
    )
    assert popped.json()["id"] is None
    assert spy.results == []


async def test_closing_answers_parked_requests(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    async def close_soon() -> None:
        await asyncio.sleep(0.2)
        horde.notifier.close()

    closer = asyncio.create_task(close_soon())
    headers = {"apikey": api_key, "Horde-Wait": "30"}
    popped = await client.post(f"{V2}/generate/text/pop", json={"name": "parked worker"}, headers=headers)
    await closer
    assert popped.status_code == 200
    assert popped.json()["id"] is None


async def test_redis_relays_wake_ups_between_nodes(redis_url: str) -> None:
    first, second = Notifier(), Notifier()
    relays = [await connect_relay(redis_url, prefix="test:", notifier=n) for n in (first, second)]
    try:
        waiter = asyncio.create_task(second.wait_for_work("text", 5))
        await asyncio.sleep(0.2)  # let both subscriptions settle
        first.work_added("text")
        assert await waiter is True
    finally:
        for relay in relays:
            await relay.stop()
