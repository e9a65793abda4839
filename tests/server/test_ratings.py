"""POST /generate/rate/{id}: answered as the reference answers it, recording nothing (ADR 0017)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.helpers import V2, webp_b64

REGEN = "AI Horde Worker reGen:9.0.0:https://github.com/Haidra-Org/horde-worker-reGen"
RATING = {"best": None, "ratings": [{"id": str(uuid.uuid4()), "rating": 7, "artifacts": 1}]}


async def _request(client: httpx.AsyncClient, key: str) -> str:
    body = {"prompt": "a lighthouse", "params": {"n": 1, "steps": 10}, "models": ["stable_diffusion"]}
    response = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": key})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def _rate(client: httpx.AsyncClient, request_id: str, body: Any = None) -> tuple[int, str | None]:
    response = await client.post(f"{V2}/generate/rate/{request_id}", json=RATING if body is None else body)
    return response.status_code, response.json().get("rc")


async def _kudos(client: httpx.AsyncClient, key: str) -> float:
    user = (await client.get(f"{V2}/find_user", headers={"apikey": key})).json()
    return float(user["kudos"])


async def test_a_completed_request_is_not_public(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = await _request(client, api_key)
    assert await _rate(client, request_id) == (400, "InvalidAestheticAttempt")  # still queued
    pop = {"name": "rating worker", "models": ["stable_diffusion"], "bridge_agent": REGEN, "amount": 1}
    popped = (await client.post(f"{V2}/generate/pop", json=pop, headers={"apikey": api_key})).json()
    assert popped["id"]
    assert await _rate(client, request_id) == (400, "InvalidAestheticAttempt")  # processing
    submit = {"id": popped["id"], "generation": webp_b64(), "state": "ok", "seed": 1}
    submitted = await client.post(f"{V2}/generate/submit", json=submit, headers={"apikey": api_key})
    assert submitted.status_code == 200, submitted.text
    before = await _kudos(client, api_key)
    assert await _rate(client, request_id) == (400, "AestheticsNotPublic")
    assert await _rate(client, request_id, {"best": popped["id"]}) == (400, "AestheticsNotPublic")
    assert await _kudos(client, api_key) == before  # no reward


async def test_a_cancelled_request_is_completed(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = await _request(client, api_key)
    assert (await client.delete(f"{V2}/generate/status/{request_id}")).status_code == 200
    assert await _rate(client, request_id) == (400, "AestheticsNotPublic")


async def test_unknown_requests(client: httpx.AsyncClient, api_key: str) -> None:
    assert await _rate(client, str(uuid.uuid4())) == (404, "RequestNotFound")
    assert await _rate(client, "not-a-uuid") == (404, "RequestNotFound")
    body = {"prompt": "Once", "models": ["some-model"]}
    text = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    assert await _rate(client, text.json()["id"]) == (404, "RequestNotFound")  # only image requests


@pytest.mark.parametrize(
    "body",
    [
        {"ratings": [{"id": str(uuid.uuid4()), "rating": 11}]},
        {"ratings": [{"id": str(uuid.uuid4()), "rating": 5, "artifacts": 6}]},
        {"ratings": [{"id": "short", "rating": 5}]},
        {"ratings": [{"rating": 5}]},
        {"best": "short"},
        [],
    ],
)
async def test_malformed_ratings(client: httpx.AsyncClient, api_key: str, body: Any) -> None:
    request_id = await _request(client, api_key)
    response = await client.post(f"{V2}/generate/rate/{request_id}", json=body)
    assert response.status_code == 400
    assert response.json()["message"] == "Input payload validation failed"
