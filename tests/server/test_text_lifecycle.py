"""The text request lifecycle over the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from horde.server.jobs import scheduled
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde

V2 = "/api/v2"


async def _request(client: httpx.AsyncClient, key: str, **params: object) -> str:
    body = {"prompt": "Once upon a time", "params": {"max_length": 32, **params}}
    response = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": key})
    assert response.status_code == 202, response.text
    request_id: str = response.json()["id"]
    return request_id


async def _pop(client: httpx.AsyncClient, key: str, **extra: object) -> dict[str, object]:
    body = {"name": "lifecycle worker", "models": ["test-model"], **extra}
    response = await client.post(f"{V2}/generate/text/pop", json=body, headers={"apikey": key})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def test_round_trip(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = await _request(client, api_key, n=2)
    popped = await _pop(client, api_key, amount=2)
    ids = popped["ids"]
    assert isinstance(ids, list) and len(ids) == 2
    assert popped["model"] == "test-model"
    for i, job_id in enumerate(ids):
        response = await client.post(
            f"{V2}/generate/text/submit",
            json={"id": job_id, "generation": f"text {i}"},
            headers={"apikey": api_key},
        )
        assert response.status_code == 200, response.text
        assert response.json()["reward"] > 0
    status = (await client.get(f"{V2}/generate/text/status/{request_id}")).json()
    assert status["done"] is True and status["finished"] == 2
    assert sorted(g["text"] for g in status["generations"]) == ["text 0", "text 1"]


async def test_double_submit_is_refused(client: httpx.AsyncClient, api_key: str) -> None:
    await _request(client, api_key)
    job_id = (await _pop(client, api_key))["id"]
    body = {"id": job_id, "generation": "once"}
    first = await client.post(f"{V2}/generate/text/submit", json=body, headers={"apikey": api_key})
    again = await client.post(f"{V2}/generate/text/submit", json=body, headers={"apikey": api_key})
    assert first.status_code == 200
    assert again.status_code == 400 and again.json()["rc"] == "DuplicateGen"


async def test_expired_lease_is_requeued(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    request_id = await _request(client, api_key)
    job_id = (await _pop(client, api_key))["id"]
    clock.advance(horde.settings.text_job_ttl + 1)
    assert await scheduled.expire_leases(horde) == 1
    late = await client.post(
        f"{V2}/generate/text/submit", json={"id": job_id, "generation": "late"}, headers={"apikey": api_key}
    )
    assert late.status_code == 400 and late.json()["rc"] == "AbortedGen"
    status = (await client.get(f"{V2}/generate/text/status/{request_id}")).json()
    assert status["restarted"] == 1 and status["waiting"] == 1
    again = await _pop(client, api_key)
    assert again["id"] not in (None, job_id)
