"""The queue snapshot: what status and the async answer say about who could serve a request."""

from __future__ import annotations

import httpx

from horde.server.kit.clock import FakeClock
from tests.helpers import V2


async def _pop(client: httpx.AsyncClient, key: str) -> dict[str, object]:
    answer = await client.post(
        f"{V2}/generate/text/pop", json={"name": "trusted worker"}, headers={"apikey": key}
    )
    result: dict[str, object] = answer.json()
    return result


async def test_a_trusted_worker_online_makes_trusted_requests_possible(
    client: httpx.AsyncClient, api_key: str, clock: FakeClock
) -> None:
    await _pop(client, api_key)  # the worker (its owner is trusted) checks in
    accepted = await client.post(
        f"{V2}/generate/text/async",
        json={"prompt": "hi", "trusted_workers": True},
        headers={"apikey": api_key},
    )
    assert accepted.status_code == 202
    assert "warnings" not in accepted.json()
    clock.advance(2)  # the next status takes a fresh snapshot, which holds the new request
    status = (await client.get(f"{V2}/generate/text/status/{accepted.json()['id']}")).json()
    assert status["is_possible"] is True
    assert status["queue_position"] == 1


async def test_an_untrusted_worker_cannot_serve_trusted_requests(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    plain = (await client.post(f"{V2}/dev/test-user", json={"oauth_id": "plain", "trusted": False,
                                                              "moderator": False})).json()  # fmt: skip
    key = plain["api_key"]
    await _pop(client, key)
    accepted = await client.post(
        f"{V2}/generate/text/async", json={"prompt": "hi", "trusted_workers": True}, headers={"apikey": key}
    )
    assert accepted.json()["warnings"][0]["code"] == "NoAvailableWorker"
    clock.advance(2)
    status = (await client.get(f"{V2}/generate/text/status/{accepted.json()['id']}")).json()
    assert status["is_possible"] is False
    assert (await _pop(client, key))["id"] is None
