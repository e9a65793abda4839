"""`/sharedkeys` and shared keys used as `apikey`, on SQLite and PostgreSQL (SEMANTICS.md 1.11 and 8,
ADR 0021): every bad input of issue 11 item 6 gets its rc and leaves balances and rows unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from horde.server.jobs.models import Request
from horde.server.kit.orm import table
from horde.server.kudos.scheduled import fold_postings
from horde.server.kudos.service import balance_of
from horde.server.kudos.service import verify as kudos_verify
from horde.server.sharedkeys.models import SharedKey, SharedKeyCharge
from horde.server.sharedkeys.scheduled import fold_shared_key_charges
from horde.server.state import Horde
from tests.contract.swagger import check_body, requires_swagger
from tests.helpers import V2, new_user, row_counts, webp_b64

pytestmark = requires_swagger
IMAGE = {"prompt": "a shared key at work", "params": {"n": 1, "steps": 10}, "models": ["stable_diffusion"]}
TEXT = {"prompt": "Once upon a time", "params": {"max_length": 32}}
REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


def _error(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["rc"] == rc, response.text


async def _key(client: httpx.AsyncClient, owner: str, **body: Any) -> dict[str, Any]:
    response = await client.put(
        f"{V2}/sharedkeys", json={"name": "Mutual Aid", **body}, headers={"apikey": owner}
    )
    assert response.status_code == 200, response.text
    details: dict[str, Any] = response.json()
    assert check_body("SharedKeyDetails", details) == []
    return details


async def _details(client: httpx.AsyncClient, key_id: str) -> dict[str, Any]:
    response = await client.get(f"{V2}/sharedkeys/{key_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _charges(horde: Horde) -> int:
    async with horde.db.autocommit() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table(SharedKeyCharge))) or 0)


async def _price(client: httpx.AsyncClient, key: str, body: dict[str, Any]) -> float:
    priced = await client.post(
        f"{V2}/generate/async", json={**body, "dry_run": True}, headers={"apikey": key}
    )
    assert priced.status_code == 200, priced.text
    kudos: float = priced.json()["kudos"]
    return kudos


async def test_create_get_patch_delete(client: httpx.AsyncClient, horde: Horde) -> None:
    owner = await new_user(client, "sk_owner")
    created = await _key(client, owner, kudos=300, expiry=30, max_image_steps=40)
    assert created["username"].startswith("sk_owner#")
    assert created["kudos"] == 300 and created["utilized"] == 0 and created["max_image_steps"] == 40
    assert created["max_image_pixels"] == -1 and created["max_text_tokens"] == -1
    assert created["expiry"] is not None
    key_id = created["id"]
    assert await _details(client, key_id) == created
    # stored only hashed: the secret is nowhere in the table
    async with horde.db.autocommit() as conn:
        hashes = (await conn.scalars(select(table(SharedKey).c.key_hash))).all()
    assert hashes and key_id not in hashes
    patched = await client.patch(
        f"{V2}/sharedkeys/{key_id}",
        json={"kudos": -1, "expiry": -1, "name": "Unlimited"},
        headers={"apikey": owner},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["kudos"] == -1 and patched.json()["name"] == "Unlimited"
    assert "expiry" not in patched.json()
    deleted = await client.delete(f"{V2}/sharedkeys/{key_id}", headers={"apikey": owner})
    assert deleted.status_code == 200, deleted.text
    assert check_body("SimpleResponse", deleted.json()) == []
    _error(await client.get(f"{V2}/sharedkeys/{key_id}"), 401, "InvalidAPIKey")


async def test_bad_management(client: httpx.AsyncClient) -> None:
    owner = await new_user(client, "sk_manager")
    other = await new_user(client, "sk_other")
    anon = "0000000000"
    _error(
        await client.put(f"{V2}/sharedkeys", json={"name": "Anon"}, headers={"apikey": anon}),
        403,
        "AnonForbidden",
    )
    bad_bodies = (
        {"kudos": 50_000_001}, {"kudos": -2}, {"name": "ab"}, {"max_image_steps": 501},
        {"max_image_pixels": 4194305}, {"max_text_tokens": 501}, {"expiry": -5}, {"expiry": 10**30},
        {"expiry": 36_501}, {"kudos": "lots"},
    )  # fmt: skip
    for bad in bad_bodies:
        response = await client.put(
            f"{V2}/sharedkeys", json={"name": "fine name", **bad}, headers={"apikey": owner}
        )
        assert response.status_code == 400, (bad, response.text)
    key_id = (await _key(client, owner))["id"]
    change = {"kudos": 10}
    _error(
        await client.patch(f"{V2}/sharedkeys/{key_id}", json=change, headers={"apikey": other}),
        403,
        "NotOwner",
    )
    _error(
        await client.patch(f"{V2}/sharedkeys/{key_id}", json=change, headers={"apikey": anon}),
        403,
        "NotOwner",
    )
    _error(await client.delete(f"{V2}/sharedkeys/{key_id}", headers={"apikey": other}), 403, "NotOwner")
    _error(
        await client.patch(f"{V2}/sharedkeys/{key_id}", json={}, headers={"apikey": owner}),
        400,
        "NoSharedKeyModSelected",
    )
    assert (await _details(client, key_id))["kudos"] == 5000  # untouched by the refusals
    _error(await client.get(f"{V2}/sharedkeys/not-a-key"), 401, "InvalidAPIKey")
    _error(await client.get(f"{V2}/sharedkeys/00000000-0000-0000-0000-000000000000"), 401, "InvalidAPIKey")
    # per-user caps by role: plain 3, trusted 10
    await _key(client, owner)
    await _key(client, owner)
    _error(
        await client.put(f"{V2}/sharedkeys", json={"name": "fourth"}, headers={"apikey": owner}),
        403,
        "Forbidden",
    )
    trusted = await new_user(client, "sk_trusted", trusted=True)
    for _ in range(10):
        await _key(client, trusted)
    _error(
        await client.put(f"{V2}/sharedkeys", json={"name": "eleventh"}, headers={"apikey": trusted}),
        403,
        "Forbidden",
    )


async def test_generation_billed_to_owner_and_charged_to_key(client: httpx.AsyncClient, horde: Horde) -> None:
    owner = await new_user(client, "sk_payer")
    key = await _key(client, owner, kudos=1000)
    price = await _price(client, key["id"], IMAGE)
    assert price > 0
    accepted = await client.post(f"{V2}/generate/async", json=IMAGE, headers={"apikey": key["id"]})
    assert accepted.status_code == 202, accepted.text
    async with horde.db.autocommit() as conn:
        payer = await conn.scalar(select(table(Request).c.user_id))
    owner_id = int(key["username"].rsplit("#", 1)[1])
    assert payer == owner_id  # the request is the owner's
    assert await _charges(horde) == 1
    assert await fold_shared_key_charges(horde) == 1
    assert await _charges(horde) == 0
    after = await _details(client, key["id"])
    assert after["utilized"] == int(price)
    assert after["kudos"] == int(1000 - price)
    text = await client.post(f"{V2}/generate/text/async", json=TEXT, headers={"apikey": key["id"]})
    assert text.status_code == 202, text.text
    assert await fold_shared_key_charges(horde) == 1
    assert (await _details(client, key["id"]))["utilized"] > after["utilized"]


async def test_key_refusals(client: httpx.AsyncClient, horde: Horde) -> None:
    owner = await new_user(client, "sk_refused")
    price = await _price(client, owner, IMAGE)
    small = await _key(client, owner, kudos=max(int(price) - 1, 1))
    empty = await _key(client, owner, kudos=0)
    expired = await _key(client, owner, expiry=0)
    before = await row_counts(horde)
    headers = {"apikey": small["id"]}
    _error(
        await client.post(f"{V2}/generate/async", json=IMAGE, headers=headers),
        403,
        "SharedKeyInsufficientKudos",
    )
    _error(
        await client.post(f"{V2}/generate/async", json=IMAGE, headers={"apikey": empty["id"]}),
        403,
        "SharedKeyEmpty",
    )
    _error(
        await client.post(f"{V2}/generate/text/async", json=TEXT, headers={"apikey": empty["id"]}),
        403,
        "SharedKeyEmpty",
    )
    _error(
        await client.post(f"{V2}/generate/async", json=IMAGE, headers={"apikey": expired["id"]}),
        403,
        "SharedKeyExpired",
    )
    assert await row_counts(horde) == before and await _charges(horde) == 0
    assert (await _details(client, small["id"]))["utilized"] == 0


async def test_key_limits(client: httpx.AsyncClient, horde: Horde) -> None:
    owner = await new_user(client, "sk_limited")
    key = await _key(client, owner, max_image_pixels=512 * 512, max_image_steps=20, max_text_tokens=16)
    headers = {"apikey": key["id"]}
    big = {**IMAGE, "params": {"n": 1, "steps": 10, "width": 1024, "height": 1024}}
    many_steps = {**IMAGE, "params": {"n": 1, "steps": 21}}
    _error(await client.post(f"{V2}/generate/async", json=big, headers=headers), 400, "BadRequest")
    _error(await client.post(f"{V2}/generate/async", json=many_steps, headers=headers), 400, "BadRequest")
    _error(await client.post(f"{V2}/generate/text/async", json=TEXT, headers=headers), 400, "BadRequest")
    assert await row_counts(horde) == (0, 0) and await _charges(horde) == 0
    fits = {**IMAGE, "params": {"n": 1, "steps": 20, "width": 512, "height": 512}}
    assert (await client.post(f"{V2}/generate/async", json=fits, headers=headers)).status_code == 202


async def test_emptied_key_falls_back_to_anonymous(client: httpx.AsyncClient, horde: Horde) -> None:
    owner = await new_user(client, "sk_downgrade")
    empty = await _key(client, owner, kudos=0)
    body = {**IMAGE, "allow_downgrade": True}
    accepted = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": empty["id"]})
    assert accepted.status_code == 202, accepted.text
    async with horde.db.autocommit() as conn:
        assert await conn.scalar(select(table(Request).c.user_id)) == 0  # the anonymous user's request
    assert await _charges(horde) == 0


async def test_deleted_key_and_routes_that_refuse_keys(client: httpx.AsyncClient) -> None:
    owner = await new_user(client, "sk_deleted")
    key = (await _key(client, owner))["id"]
    headers = {"apikey": key}
    # only the generate routes and /find_user take a shared key: elsewhere it is an unknown API key
    worker = {"name": "sk worker", "models": ["stable_diffusion"], "max_pixels": 1048576}
    _error(await client.post(f"{V2}/generate/pop", json=worker, headers=headers), 401, "InvalidAPIKey")
    transfer = {"username": "sk_deleted#1", "amount": 1}
    _error(await client.post(f"{V2}/kudos/transfer", json=transfer, headers=headers), 401, "InvalidAPIKey")
    _error(
        await client.put(f"{V2}/users/1", json={"contact": "x@y.z"}, headers=headers), 401, "InvalidAPIKey"
    )
    interrogate = {"forms": [{"name": "caption"}], "source_image": "https://example.com/a.webp"}
    _error(
        await client.post(f"{V2}/interrogate/async", json=interrogate, headers=headers), 401, "InvalidAPIKey"
    )
    _error(
        await client.put(f"{V2}/sharedkeys", json={"name": "nested"}, headers=headers), 401, "InvalidAPIKey"
    )
    assert (await client.delete(f"{V2}/sharedkeys/{key}", headers={"apikey": owner})).status_code == 200
    _error(await client.post(f"{V2}/generate/async", json=IMAGE, headers=headers), 401, "InvalidAPIKey")
    _error(await client.get(f"{V2}/find_user", headers=headers), 404, "UserNotFound")


async def test_find_user_with_a_key(client: httpx.AsyncClient) -> None:
    owner = await new_user(client, "sk_found")
    key = await _key(client, owner, name="Family")
    found = await client.get(f"{V2}/find_user", headers={"apikey": key["id"]})
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["username"] == f"{key['username']} (Shared Key: Family)"
    assert "contact" not in body and "sharedkey_ids" not in body  # level 0: the public view


async def test_transfer_to_a_key_raises_its_limit(client: httpx.AsyncClient, horde: Horde) -> None:
    sender = await new_user(client, "sk_sender")
    await fold_postings(horde)
    owner = await new_user(client, "sk_receiver")
    key = await _key(client, owner, kudos=100)
    owner_id = int(key["username"].rsplit("#", 1)[1])
    async with horde.db.autocommit() as conn:
        before = await balance_of(conn, owner_id)
    sent = await client.post(
        f"{V2}/kudos/transfer", json={"username": key["id"], "amount": 40}, headers={"apikey": sender}
    )
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"transferred": 40}
    async with horde.db.autocommit() as conn:
        assert await balance_of(conn, owner_id) == before + 4000
    assert (await _details(client, key["id"]))["kudos"] == 140
    expired = await _key(client, owner, expiry=0)
    refused = await client.post(
        f"{V2}/kudos/transfer", json={"username": expired["id"], "amount": 1}, headers={"apikey": sender}
    )
    _error(refused, 400, "SharedKeyExpired")
    async with horde.db.autocommit() as conn:
        assert await balance_of(conn, owner_id) == before + 4000


@pytest.mark.committed
@pytest.mark.parametrize("settings_overrides", [{"db_pool_size": 10}])
async def test_concurrent_spends_never_overdraw_a_key(client: httpx.AsyncClient, horde: Horde) -> None:
    """Eight requests at once through a key with room for three: three are accepted, and the key's
    charges are exactly theirs."""
    owner = await new_user(client, "sk_racer")
    price = await _price(client, owner, IMAGE)
    key = await _key(client, owner, kudos=int(price * 3.5))

    async def one() -> httpx.Response:
        return await client.post(f"{V2}/generate/async", json=IMAGE, headers={"apikey": key["id"]})

    replies = await asyncio.gather(*(one() for _ in range(8)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [202] * 3 + [403] * 5, [r.text for r in replies]
    assert {r.json()["rc"] for r in replies if r.status_code == 403} == {"SharedKeyInsufficientKudos"}
    assert (await row_counts(horde))[0] == 3
    await fold_shared_key_charges(horde)
    assert (await _details(client, key["id"]))["utilized"] == int(price * 3)


async def test_key_deleted_while_its_request_runs(client: httpx.AsyncClient, horde: Horde) -> None:
    """The request a key queued still runs and is billed to the owner; the key takes no new one."""
    owner = await new_user(client, "sk_inflight")
    worker_owner = await new_user(client, "sk_worker")
    key = await _key(client, owner)
    accepted = await client.post(f"{V2}/generate/async", json=IMAGE, headers={"apikey": key["id"]})
    assert accepted.status_code == 202, accepted.text
    assert (await client.delete(f"{V2}/sharedkeys/{key['id']}", headers={"apikey": owner})).status_code == 200
    _error(
        await client.post(f"{V2}/generate/async", json=IMAGE, headers={"apikey": key["id"]}),
        401,
        "InvalidAPIKey",
    )
    await fold_postings(horde)
    owner_id = int(key["username"].rsplit("#", 1)[1])
    async with horde.db.autocommit() as conn:
        before = await balance_of(conn, owner_id)
    worker = {"name": "sk inflight worker", "models": ["stable_diffusion"], "bridge_agent": REGEN}
    popped = (await client.post(f"{V2}/generate/pop", json=worker, headers={"apikey": worker_owner})).json()
    assert popped["id"], popped
    result = {"id": popped["id"], "generation": webp_b64(), "state": "ok", "seed": 1}
    submitted = await client.post(f"{V2}/generate/submit", json=result, headers={"apikey": worker_owner})
    assert submitted.status_code == 200, submitted.text
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        assert await balance_of(conn, owner_id) < before  # the owner paid for the job
        assert await kudos_verify(conn) == []
    assert await _charges(horde) == 0  # its charges went with the key


async def test_cancel_gives_the_key_back_its_unserved_quote(client: httpx.AsyncClient, horde: Horde) -> None:
    owner = await new_user(client, "sk_cancel")
    key = await _key(client, owner, kudos=1000)
    two = {**IMAGE, "params": {"n": 2, "steps": 10}}
    accepted = await client.post(f"{V2}/generate/async", json=two, headers={"apikey": key["id"]})
    assert accepted.status_code == 202, accepted.text
    await fold_shared_key_charges(horde)
    assert (await _details(client, key["id"]))["utilized"] > 0
    cancelled = await client.delete(f"{V2}/generate/status/{accepted.json()['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert await fold_shared_key_charges(horde) == 1  # the refund
    after = await _details(client, key["id"])
    assert after["utilized"] == 0 and after["kudos"] == 1000
