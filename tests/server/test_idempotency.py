"""`Idempotency-Key` on creations (issue 10 finding 12): a retried generate/async whose answer was lost
queues (and charges) nothing more; another body under the same key is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from horde.server.jobs.idempotency import expire_keys
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests.helpers import V2, png_b64, row_counts

CREATIONS = [
    ("generate/async", {"prompt": "a lighthouse", "params": {"n": 2, "steps": 10}}),
    ("generate/text/async", {"prompt": "once upon a time", "params": {"n": 2, "max_length": 40}}),
    ("interrogate/async", {"forms": [{"name": "caption"}], "source_image": png_b64()}),
]


@pytest.mark.parametrize(("path", "body"), CREATIONS, ids=["image", "text", "alchemy"])
async def test_a_retry_returns_the_first_answer_and_queues_nothing(
    client: httpx.AsyncClient, api_key: str, horde: Horde, path: str, body: dict[str, Any]
) -> None:
    headers = {"apikey": api_key, "Idempotency-Key": "retry-1"}
    first = await client.post(f"{V2}/{path}", json=body, headers=headers)
    assert first.status_code == 202, first.text
    stored = await row_counts(horde)
    retry = await client.post(f"{V2}/{path}", json=body, headers=headers)
    assert retry.status_code == 202, retry.text
    assert retry.json() == first.json()
    assert await row_counts(horde) == stored
    changed = {"prompt": "another"} if "prompt" in body else {"forms": [{"name": "nsfw"}]}
    other = await client.post(f"{V2}/{path}", json={**body, **changed}, headers=headers)
    assert (other.status_code, other.json()["rc"]) == (400, "IdempotencyKeyConflict")
    assert await row_counts(horde) == stored
    fresh = await client.post(f"{V2}/{path}", json=body, headers={**headers, "Idempotency-Key": "retry-2"})
    assert fresh.status_code == 202 and fresh.json()["id"] != first.json()["id"]


async def test_a_refused_creation_gives_its_key_back(client: httpx.AsyncClient, horde: Horde) -> None:
    headers = {"apikey": "0000000000", "Idempotency-Key": "big"}
    big = {"prompt": "x", "params": {"width": 2048, "height": 2048}}
    refused = await client.post(f"{V2}/generate/async", json=big, headers=headers)
    assert refused.json()["rc"] == "KudosUpfront"
    small = {"prompt": "x", "params": {"width": 512, "height": 512}}
    # a different body under the key of a refused request: nothing was queued, so it is free again
    assert (await client.post(f"{V2}/generate/async", json=small, headers=headers)).status_code == 202


async def test_keys_expire(client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock) -> None:
    path, body = CREATIONS[1]
    headers = {"apikey": api_key, "Idempotency-Key": "old"}
    first = await client.post(f"{V2}/{path}", json=body, headers=headers)
    clock.advance(horde.settings.idempotency_key_ttl + 1)
    assert await expire_keys(horde) == 1
    again = await client.post(f"{V2}/{path}", json=body, headers=headers)
    assert again.status_code == 202 and again.json()["id"] != first.json()["id"]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"db_pool_size": 15}


@pytest.mark.committed
async def test_ten_concurrent_retries_queue_one_request(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    path, body = CREATIONS[0]
    headers = {"apikey": api_key, "Idempotency-Key": "raced"}
    answers = await asyncio.gather(
        *[client.post(f"{V2}/{path}", json=body, headers=headers) for _ in range(10)]
    )
    assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await row_counts(horde) == (1, 2)
