"""Upfront kudos (SEMANTICS.md 4.4, issue 10 finding 1): the free size from the live queue and threads,
anonymous requests above it refused, registered ones holding their price against available kudos."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest

from horde.server.kudos import pricing, taxes
from horde.server.kudos import service as kudos
from horde.server.kudos.scheduled import fold_postings
from horde.server.state import Horde
from horde.server.users import service as users
from tests.helpers import V2, row_counts, webp_b64

ANON = {"apikey": "0000000000"}
REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"
BIG = {"prompt": "a cathedral", "params": {"width": 1536, "height": 1536, "steps": 30, "n": 1}}


def test_the_free_size_follows_threads_and_queue() -> None:
    assert pricing.free_image_side(threads=0, queued=0, baselines=[]) == 1024
    assert pricing.free_image_side(threads=0, queued=100, baselines=[]) == 934
    assert pricing.free_image_side(threads=5, queued=100, baselines=[]) == 984
    assert pricing.free_image_side(threads=0, queued=10_000, baselines=[]) == 576
    assert pricing.free_image_side(threads=0, queued=10_000, baselines=["stable diffusion 2"]) == 768
    assert pricing.free_image_side(threads=0, queued=10_000, baselines=["stable_diffusion_xl"]) == 1024
    assert pricing.free_image_side(threads=50, queued=0, baselines=[]) == 1024
    assert pricing.free_text_length(threads=0, queued=0) == 512
    assert pricing.free_text_length(threads=2, queued=300) == 256  # 252, clamped
    assert pricing.free_text_length(threads=0, queued=1000) == 256
    assert pricing.accurate_steps(30, "k_heun") == 60
    assert pricing.accurate_steps(30, "k_dpm_adaptive") == 40
    assert pricing.accurate_steps(30, "k_euler") == 30


async def _user(client: httpx.AsyncClient, name: str, kudos_: float, **extra: Any) -> dict[str, Any]:
    body = {"username": name, "oauth_id": f"oauth-{name}", "kudos": kudos_, "moderator": False, **extra}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def _held(horde: Horde, user_id: int) -> int:
    async with horde.db.autocommit() as conn:
        return await kudos.held_of(conn, user_id)


async def _price(client: httpx.AsyncClient, body: dict[str, Any]) -> float:
    response = await client.post(f"{V2}/generate/async", json={**body, "dry_run": True}, headers=ANON)
    assert response.status_code == 200, response.text
    price: float = response.json()["kudos"]
    return price


@pytest.mark.parametrize(
    "params",
    [
        {"width": 1536, "height": 1536},  # above the free size
        {"steps": 60},  # above the models' step limit
        {"steps": 45, "sampler_name": "k_heun"},  # twice its steps for a second-order sampler: 90 > 40
        {"steps": 12, "sampler_name": "lcm"},
        {"steps": 25, "control_type": "canny"},
    ],
)
async def test_anonymous_requests_above_what_is_free_are_refused(
    client: httpx.AsyncClient, horde: Horde, params: dict[str, Any]
) -> None:
    body = {"prompt": "a cathedral", "params": {"n": 1, **params}}
    if "control_type" in params:
        body["source_image"] = webp_b64()
    response = await client.post(f"{V2}/generate/async", json=body, headers=ANON)
    assert response.status_code == 403, response.text
    assert response.json()["rc"] == "KudosUpfront"
    assert await row_counts(horde) == (0, 0)


async def test_anonymous_slow_workers_false_and_long_texts_need_upfront_kudos(
    client: httpx.AsyncClient,
) -> None:
    image = {"prompt": "a cathedral", "params": {"n": 1}, "slow_workers": False}
    response = await client.post(f"{V2}/generate/async", json=image, headers=ANON)
    assert (response.status_code, response.json()["rc"]) == (403, "KudosUpfront")
    text = {"prompt": "once upon a time", "params": {"max_length": 600, "max_context_length": 2048}}
    response = await client.post(f"{V2}/generate/text/async", json=text, headers=ANON)
    assert (response.status_code, response.json()["rc"]) == (403, "KudosUpfront")
    small = {"prompt": "once upon a time", "params": {"max_length": 200}}
    assert (await client.post(f"{V2}/generate/text/async", json=small, headers=ANON)).status_code == 202


async def test_anonymous_requests_within_the_free_size_are_accepted(client: httpx.AsyncClient) -> None:
    body = {"prompt": "a cathedral", "params": {"width": 1024, "height": 1024, "steps": 40, "n": 1}}
    response = await client.post(f"{V2}/generate/async", json=body, headers=ANON)
    assert response.status_code == 202, response.text


async def test_the_free_size_shrinks_as_the_queue_grows(client: httpx.AsyncClient, horde: Horde) -> None:
    body = {"prompt": "a cathedral", "params": {"width": 960, "height": 960, "steps": 20, "n": 1}}
    async with horde.db.transaction() as conn:
        busy = await users.create_user(
            conn, username="busy", oauth_id="busy", pepper=horde.pepper, now=0.0, concurrency=500
        )
    small = {"prompt": "x", "params": {"width": 512, "height": 512, "steps": 10, "n": 20}}
    for _ in range(5):  # 100 queued jobs: the free side is 1024 - 90 = 934 < 960
        queued = await client.post(f"{V2}/generate/async", json=small, headers={"apikey": busy.api_key})
        assert queued.status_code == 202, queued.text
    response = await client.post(f"{V2}/generate/async", json=body, headers=ANON)
    assert (response.status_code, response.json()["rc"]) == (403, "KudosUpfront")


async def test_a_registered_user_holds_the_price_of_each_big_request(
    client: httpx.AsyncClient, horde: Horde
) -> None:
    price = await _price(client, BIG)
    alice = await _user(client, "alice", kudos.OAUTH_FLOOR / 100 + 3.5 * price)  # room for three
    fits = 3
    keyed = {"apikey": alice["api_key"]}
    for _ in range(fits):
        assert (await client.post(f"{V2}/generate/async", json=BIG, headers=keyed)).status_code == 202
    refused = await client.post(f"{V2}/generate/async", json=BIG, headers=keyed)
    assert (refused.status_code, refused.json()["rc"]) == (403, "KudosUpfront")
    assert await _held(horde, int(alice["user_id"])) == fits * pricing.hundredths(price)
    assert await row_counts(horde) == (fits, fits)
    small = {"prompt": "x", "params": {"width": 512, "height": 512, "steps": 20, "n": 1}}
    assert (await client.post(f"{V2}/generate/async", json=small, headers=keyed)).status_code == 202


async def test_settlement_consumes_the_hold_and_the_end_releases_it(
    client: httpx.AsyncClient, horde: Horde
) -> None:
    alice = await _user(client, "alice", 1000)
    owner = await _user(client, "owner", 0)
    keyed, worker_key = {"apikey": alice["api_key"]}, {"apikey": owner["api_key"]}
    big = {**BIG, "params": {**BIG["params"], "n": 2}}
    accepted = await client.post(f"{V2}/generate/async", json=big, headers=keyed)
    assert accepted.status_code == 202, accepted.text
    held = await _held(horde, int(alice["user_id"]))
    assert held > 0
    pop = {"name": "big worker", "models": ["stable_diffusion"], "bridge_agent": REGEN, "amount": 1,
           "max_pixels": 1536 * 1536}  # fmt: skip
    job = (await client.post(f"{V2}/generate/pop", json=pop, headers=worker_key)).json()
    put = await client.put(
        job["r2_upload"].removeprefix("http://testserver"), content=base64.b64decode(webp_b64())
    )
    assert put.status_code == 200
    submit = {"id": job["id"], "generation": "R2", "seed": 1, "state": "ok"}
    assert (await client.post(f"{V2}/generate/submit", json=submit, headers=worker_key)).status_code == 200
    async with horde.db.autocommit() as conn:
        charges = await kudos.totals_by_reason(conn, int(alice["user_id"]))
    cost = charges["generation"]
    assert cost < 0
    assert await _held(horde, int(alice["user_id"])) == held + cost  # the charge consumed its part
    # the second job ends by a cancel: what is left of the hold goes back
    await client.delete(f"{V2}/generate/status/{accepted.json()['id']}")
    assert await _held(horde, int(alice["user_id"])) == 0


async def test_the_last_settled_job_releases_the_rest_of_the_hold(
    client: httpx.AsyncClient, horde: Horde
) -> None:
    alice = await _user(client, "alice", 1000)
    owner = await _user(client, "owner", 0)
    keyed, worker_key = {"apikey": alice["api_key"]}, {"apikey": owner["api_key"]}
    assert (await client.post(f"{V2}/generate/async", json=BIG, headers=keyed)).status_code == 202
    pop = {"name": "big worker", "models": ["stable_diffusion"], "bridge_agent": REGEN, "amount": 1,
           "max_pixels": 1536 * 1536}  # fmt: skip
    job = (await client.post(f"{V2}/generate/pop", json=pop, headers=worker_key)).json()
    await client.put(job["r2_upload"].removeprefix("http://testserver"), content=base64.b64decode(webp_b64()))
    submit = {"id": job["id"], "generation": "R2", "seed": 1, "state": "ok"}
    assert (await client.post(f"{V2}/generate/submit", json=submit, headers=worker_key)).status_code == 200
    assert await _held(horde, int(alice["user_id"])) == 0
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        assert await kudos.verify(conn) == []


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"db_pool_size": 15}


@pytest.mark.committed
async def test_concurrent_big_requests_hold_no_more_than_is_available(
    client: httpx.AsyncClient, horde: Horde
) -> None:
    price = await _price(client, BIG)
    alice = await _user(client, "alice", kudos.OAUTH_FLOOR / 100 + 3.5 * price)  # room for three
    fits = 3
    keyed = {"apikey": alice["api_key"]}
    answers = await asyncio.gather(
        *[client.post(f"{V2}/generate/async", json=BIG, headers=keyed) for _ in range(10)]
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [202] * fits + [403] * (10 - fits)
    assert await _held(horde, int(alice["user_id"])) == fits * pricing.hundredths(price)
    assert (await row_counts(horde))[0] == fits


async def test_transfers_cannot_spend_what_a_request_holds(client: httpx.AsyncClient, horde: Horde) -> None:
    price = await _price(client, BIG)
    alice = await _user(client, "alice", 1000)
    bob = await _user(client, "bob", 0)
    keyed = {"apikey": alice["api_key"]}
    assert (await client.post(f"{V2}/generate/async", json=BIG, headers=keyed)).status_code == 202
    available = int(1000 - kudos.OAUTH_FLOOR / 100 - price - taxes.ACTIVATION_TAX)  # the tax is charged too
    transfer = {"username": bob["alias"], "amount": available + 1}
    refused = await client.post(f"{V2}/kudos/transfer", json=transfer, headers=keyed)
    assert (refused.status_code, refused.json()["rc"]) == (400, "KudosTransferNotEnough")
    transfer["amount"] = available
    assert (await client.post(f"{V2}/kudos/transfer", json=transfer, headers=keyed)).status_code == 200
