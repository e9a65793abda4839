"""Kudos movements over the API: transfers (rules, idempotency, races), awards, admin adjustments and
monthly kudos (SEMANTICS.md 1.7, 4.6). Every refusal leaves balances and rows as they were."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from horde.server.kit.clock import FakeClock
from horde.server.kudos import service as kudos
from horde.server.kudos.records import KudosTransfer, MonthlyKudos
from horde.server.kudos.scheduled import fold_postings, pay_monthly
from horde.server.state import Horde
from tests.helpers import V2

ANON_KEY = "0000000000"


async def _user(client: httpx.AsyncClient, name: str, kudos_: float = 1000, **extra: Any) -> dict[str, Any]:
    body = {"username": name, "oauth_id": f"oauth-{name}", "moderator": False, "trusted": False,
            "kudos": kudos_, **extra}  # fmt: skip
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def _transfer(
    client: httpx.AsyncClient, key: str, username: str, amount: Any, idempotency: str | None = None
) -> httpx.Response:
    headers = {"apikey": key} | ({"Idempotency-Key": idempotency} if idempotency else {})
    return await client.post(
        f"{V2}/kudos/transfer", json={"username": username, "amount": amount}, headers=headers
    )


async def _ledger(horde: Horde, *user_ids: int) -> tuple[int, int, list[int]]:
    """(postings, transfers, balances of the users): what a refused movement must leave alone."""
    async with horde.db.autocommit() as conn:
        postings = int(await conn.scalar(select(func.count()).select_from(kudos.postings)) or 0)
        transfers = int(await conn.scalar(select(func.count()).select_from(KudosTransfer)) or 0)
        balances = [await kudos.balance_of(conn, u) for u in user_ids]
    return postings, transfers, balances


async def _kudos_of(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"{V2}/find_user", headers={"apikey": key})).json()
    return body


def _error(response: httpx.Response, status: int, rc: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.json().get("rc") == rc, response.text


async def test_a_transfer_moves_kudos(client: httpx.AsyncClient, horde: Horde) -> None:
    alice, bob = await _user(client, "alice"), await _user(client, "bob")
    response = await _transfer(client, alice["api_key"], bob["alias"], 100)
    assert response.status_code == 200, response.text
    assert response.json() == {"transferred": 100}
    sender, recipient = await _kudos_of(client, alice["api_key"]), await _kudos_of(client, bob["api_key"])
    assert sender["kudos"] == 900 and sender["kudos_details"]["gifted"] == -100
    assert recipient["kudos"] == 1100 and recipient["kudos_details"]["received"] == 100
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        assert await kudos.verify(conn) == []
        assert await kudos.balance_of(conn, int(bob["user_id"])) == 110_000


async def test_a_transfer_to_education_is_donated(client: httpx.AsyncClient, api_key: str) -> None:
    alice, school = await _user(client, "alice"), await _user(client, "school")
    await client.put(f"{V2}/users/{school['user_id']}", json={"education": True}, headers={"apikey": api_key})
    assert (await _transfer(client, alice["api_key"], school["alias"], 10)).status_code == 200
    assert (await _kudos_of(client, alice["api_key"]))["kudos_details"]["donated"] == -10


async def test_available_is_balance_less_floor(client: httpx.AsyncClient, horde: Horde) -> None:
    alice, bob = await _user(client, "alice", 100), await _user(client, "bob")  # OAuth floor: 25
    before = await _ledger(horde, int(alice["user_id"]), int(bob["user_id"]))
    _error(await _transfer(client, alice["api_key"], bob["alias"], 76), 400, "KudosTransferNotEnough")
    assert await _ledger(horde, int(alice["user_id"]), int(bob["user_id"])) == before
    assert (await _transfer(client, alice["api_key"], bob["alias"], 75)).status_code == 200
    assert (await _kudos_of(client, alice["api_key"]))["kudos"] == 25


async def test_bad_transfers_change_nothing(client: httpx.AsyncClient, horde: Horde, api_key: str) -> None:
    alice, bob = await _user(client, "alice"), await _user(client, "bob")
    flagged, school = await _user(client, "flagged"), await _user(client, "school")
    for user, role in ((flagged, "flagged"), (school, "education")):
        changed = await client.put(
            f"{V2}/users/{user['user_id']}", json={role: True}, headers={"apikey": api_key}
        )
        assert changed.status_code == 200, changed.text
    ids = [int(u["user_id"]) for u in (alice, bob, flagged, school)] + [0]
    key, to = alice["api_key"], bob["alias"]
    cases: list[tuple[str, str, Any, int, str | None]] = [
        (key, to, -5, 400, "NegativeKudosTransfer"),
        (key, to, 0, 400, "InvalidKudosTransferAmount"),
        (key, to, 1.5, 400, None),  # not an integer: a validation error
        (key, to, 10.0, 400, None),
        (key, to, "100", 400, None),
        (key, to, True, 400, None),
        (key, to, None, 400, None),
        (key, to, 10**30, 400, "KudosTransferNotEnough"),
        (key, to, 2**63, 400, "KudosTransferNotEnough"),
        (key, alice["alias"], 10, 400, "KudosTransferToSelf"),
        (key, "Anonymous#0", 10, 400, "KudosTransferToAnon"),
        (key, "nobody#999999", 10, 400, "InvalidTargetUsername"),
        (key, "nobody#99999999999999999999", 10, 400, "InvalidTargetUsername"),
        (key, "bob", 10, 400, "InvalidTargetUsername"),
        (key, "00000000-0000-0000-0000-000000000000", 10, 400, "InvalidTargetUsername"),  # no shared keys
        (key, flagged["alias"], 10, 400, "TargetAccountFlagged"),
        (ANON_KEY, to, 10, 400, "KudosTransferFromAnon"),
        (flagged["api_key"], to, 10, 400, "SourceAccountFlagged"),
        (school["api_key"], to, 10, 400, "EducationCannotSendKudos"),
        ("not-a-key", to, 10, 401, "InvalidAPIKey"),
    ]
    before = await _ledger(horde, *ids)
    for sender, target, amount, status, rc in cases:
        response = await _transfer(client, sender, target, amount)
        assert (response.status_code, response.json().get("rc")) == (status, rc), (
            target,
            amount,
            response.text,
        )
    assert await _ledger(horde, *ids) == before
    missing = await client.post(f"{V2}/kudos/transfer", json={"username": to, "amount": 1})
    assert missing.status_code == 400  # no apikey header


async def test_transferring_back_waits_a_minute(
    client: httpx.AsyncClient, horde: Horde, clock: FakeClock
) -> None:
    alice, bob = await _user(client, "alice"), await _user(client, "bob")
    assert (await _transfer(client, alice["api_key"], bob["alias"], 10)).status_code == 200
    before = await _ledger(horde, int(alice["user_id"]), int(bob["user_id"]))
    _error(await _transfer(client, bob["api_key"], alice["alias"], 5), 400, "TooFastKudosTransfers")
    assert await _ledger(horde, int(alice["user_id"]), int(bob["user_id"])) == before
    assert (await _transfer(client, alice["api_key"], bob["alias"], 10)).status_code == 200  # same way: fine
    clock.advance(61)
    assert (await _transfer(client, bob["api_key"], alice["alias"], 5)).status_code == 200


async def test_an_idempotency_key_applies_once(client: httpx.AsyncClient, horde: Horde) -> None:
    alice, bob, carol = await _user(client, "alice"), await _user(client, "bob"), await _user(client, "carol")
    ids = [int(u["user_id"]) for u in (alice, bob, carol)]
    first = await _transfer(client, alice["api_key"], bob["alias"], 30, "retry-1")
    assert first.status_code == 200 and first.json() == {"transferred": 30}
    applied = await _ledger(horde, *ids)
    for _ in range(3):
        again = await _transfer(client, alice["api_key"], bob["alias"], 30, "retry-1")
        assert again.status_code == 200 and again.json() == first.json()
    _error(
        await _transfer(client, alice["api_key"], bob["alias"], 31, "retry-1"), 400, "IdempotencyKeyConflict"
    )
    _error(
        await _transfer(client, alice["api_key"], carol["alias"], 30, "retry-1"),
        400,
        "IdempotencyKeyConflict",
    )
    _error(await _transfer(client, alice["api_key"], bob["alias"], 30, "k" * 256), 400, "BadRequest")
    assert await _ledger(horde, *ids) == applied
    assert applied[2][:2] == [97_000, 103_000]
    # the key is the sender's: another sender may use the same one; no key, no de-duplication
    assert (await _transfer(client, carol["api_key"], bob["alias"], 30, "retry-1")).status_code == 200
    for _ in range(2):
        assert (await _transfer(client, alice["api_key"], bob["alias"], 1)).status_code == 200
    assert (await _ledger(horde, *ids))[2] == [96_800, 106_200, 97_000]


@pytest.mark.committed
async def test_one_key_replayed_concurrently_applies_once(client: httpx.AsyncClient, horde: Horde) -> None:
    alice, bob = await _user(client, "alice"), await _user(client, "bob")
    replies = await asyncio.gather(
        *(_transfer(client, alice["api_key"], bob["alias"], 40, "same-key") for _ in range(10))
    )
    assert [r.status_code for r in replies] == [200] * 10, [r.text for r in replies]
    assert {r.json()["transferred"] for r in replies} == {40}
    _, transfers, balances = await _ledger(horde, int(alice["user_id"]), int(bob["user_id"]))
    assert transfers == 1 and balances == [96_000, 104_000]


async def test_awards(client: httpx.AsyncClient, horde: Horde, api_key: str) -> None:
    awarder = await _kudos_of(client, api_key)
    assert awarder["id"] == 1  # the reference's only awarder
    bob, carol = await _user(client, "bob"), await _user(client, "carol")
    response = await client.post(
        f"{V2}/kudos/award", json={"username": bob["alias"], "amount": 50}, headers={"apikey": api_key}
    )
    assert response.status_code == 200 and response.json() == {"awarded": 50}
    details = await _kudos_of(client, bob["api_key"])
    assert details["kudos"] == 1050 and details["kudos_details"]["awarded"] == 50
    before = await _ledger(horde, 1, int(bob["user_id"]), int(carol["user_id"]), 0)
    cases = [
        (carol["api_key"], bob["alias"], 50, 403, "NotAllowedAwards"),
        (ANON_KEY, bob["alias"], 50, 403, "NotAllowedAwards"),
        (api_key, "Anonymous#0", 50, 400, "KudosAwardToAnon"),
        (api_key, "nobody#4242", 50, 400, "InvalidAwardUsername"),
        (api_key, bob["alias"], -50, 400, "NegativeKudosTransfer"),
        (api_key, bob["alias"], 0, 400, "InvalidKudosTransferAmount"),
        (api_key, bob["alias"], 10**30, 400, "KudosValidationError"),
        (api_key, bob["alias"], "50", 400, None),
    ]
    for key, target, amount, status, rc in cases:
        answer = await client.post(
            f"{V2}/kudos/award", json={"username": target, "amount": amount}, headers={"apikey": key}
        )
        assert (answer.status_code, answer.json().get("rc")) == (status, rc), (target, amount, answer.text)
    assert await _ledger(horde, 1, int(bob["user_id"]), int(carol["user_id"]), 0) == before


@pytest.mark.parametrize("settings_overrides", [{"admins": ["boss#2"]}])
async def test_admins_award_and_adjust(client: httpx.AsyncClient, horde: Horde, api_key: str) -> None:
    boss, bob = await _user(client, "boss"), await _user(client, "bob")
    assert boss["user_id"] == "2"
    awarded = await client.post(
        f"{V2}/kudos/award", json={"username": bob["alias"], "amount": 5}, headers={"apikey": boss["api_key"]}
    )
    assert awarded.status_code == 200, awarded.text
    path = f"{V2}/users/{bob['user_id']}"
    changed = await client.put(path, json={"kudos": -105.5}, headers={"apikey": boss["api_key"]})
    assert changed.status_code == 200 and changed.json() == {"new_kudos": 899.5}, changed.text
    details = await _kudos_of(client, bob["api_key"])
    assert details["kudos"] == 899.5 and details["kudos_details"]["admin"] == 1000 - 105.5
    before = await _ledger(horde, int(bob["user_id"]))
    for key, body, status, rc in (
        (api_key, {"kudos": 10}, 403, "NotAdmin"),  # a moderator, not an admin
        (bob["api_key"], {"kudos": 10}, 403, "NotAdmin"),  # raising one's own kudos
        (bob["api_key"], {"monthly_kudos": 10}, 403, "NotAdmin"),
        (boss["api_key"], {"kudos": 1e20}, 400, "KudosValidationError"),
        (boss["api_key"], {"kudos": 1e308}, 400, "KudosValidationError"),
        (boss["api_key"], {"monthly_kudos": -1}, 400, "KudosValidationError"),
        (boss["api_key"], {"kudos": "lots"}, 400, None),
    ):
        answer = await client.put(path, json=body, headers={"apikey": key})
        assert (answer.status_code, answer.json().get("rc")) == (status, rc), (body, answer.text)
    assert await _ledger(horde, int(bob["user_id"])) == before
    _error(await client.put(f"{V2}/users/0", json={"kudos": 5}, headers={"apikey": boss["api_key"]}),
           403, "AnonForbiddenUserMod")  # fmt: skip


DAY = 86_400.0


@pytest.mark.parametrize("settings_overrides", [{"admins": ["boss#2"]}])
async def test_monthly_kudos_pay_once_a_month(
    client: httpx.AsyncClient, horde: Horde, clock: FakeClock, api_key: str
) -> None:
    boss, bob = await _user(client, "boss"), await _user(client, "bob")
    path, keyed = f"{V2}/users/{bob['user_id']}", {"apikey": boss["api_key"]}
    changed = await client.put(path, json={"monthly_kudos": 300}, headers=keyed)
    assert changed.status_code == 200 and changed.json() == {"monthly_kudos": 300}, changed.text
    assert (await _kudos_of(client, bob["api_key"]))["kudos"] == 1300  # paid at once
    shown = (await client.get(path, headers={"apikey": api_key})).json()["monthly_kudos"]
    assert shown["amount"] == 300 and shown["last_received"]
    assert await pay_monthly(horde) == 0
    clock.advance(27 * DAY)
    assert await pay_monthly(horde) == 0
    clock.advance(4 * DAY)  # past one calendar month, whatever the month
    assert await pay_monthly(horde) == 1
    assert await pay_monthly(horde) == 0  # the same month again: nothing
    assert (await _kudos_of(client, bob["api_key"]))["kudos_details"]["recurring"] == 600
    clock.advance(3 * 31 * DAY)  # three months missed: one month per run
    assert [await pay_monthly(horde) for _ in range(4)] == [1, 1, 1, 0]
    # a rise pays the difference at once; a cut pays nothing
    assert (await client.put(path, json={"monthly_kudos": 500}, headers=keyed)).status_code == 200
    assert (await client.put(path, json={"monthly_kudos": 100}, headers=keyed)).status_code == 200
    details = await _kudos_of(client, bob["api_key"])
    assert details["kudos_details"]["recurring"] == 300 * 5 + 200
    async with horde.db.autocommit() as conn:
        assert await conn.scalar(select(MonthlyKudos.amount)) == 100
        assert await kudos.verify(conn) == []


@pytest.mark.committed
@pytest.mark.parametrize("settings_overrides", [{"db_pool_size": 10}])
async def test_200_concurrent_transfers_keep_the_ledger(
    client: httpx.AsyncClient, horde: Horde, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transfers both ways between the same people, some replayed under one key, all at once: each
    accepted one moves exactly its amount, nobody goes below their floor, and the ledger verifies."""
    if horde.db.is_sqlite:
        pytest.skip("the race is PostgreSQL's: SQLite serialises its writers")
    from horde.server.serve import verify_kudos

    people = [await _user(client, f"racer{i}", 200) for i in range(4)]
    rng = random.Random(11)
    plan: list[tuple[dict[str, Any], dict[str, Any], int, str | None]] = []
    for n in range(200):
        if n % 10 == 1:
            plan.append(plan[-1])  # a replay of the op before, under its key
            continue
        sender, recipient = rng.sample(people, 2)
        plan.append((sender, recipient, rng.randint(1, 40), f"op-{n}" if n % 10 == 0 else None))
    gate = asyncio.Semaphore(20)

    async def one(sender: dict[str, Any], recipient: dict[str, Any], amount: int, key: str | None) -> Any:
        async with gate:
            return await _transfer(client, sender["api_key"], recipient["alias"], amount, key)

    replies = await asyncio.gather(*(one(*op) for op in plan))
    expected = {int(p["user_id"]): 20_000 for p in people}
    applied: set[str] = set()
    for (sender, recipient, amount, key), reply in zip(plan, replies, strict=True):
        assert reply.status_code in (200, 400), reply.text
        if reply.status_code == 400:
            assert reply.json()["rc"] in ("TooFastKudosTransfers", "KudosTransferNotEnough"), reply.text
            continue
        if key is not None and key in applied:
            continue  # a replay: answered, not applied again
        if key is not None:
            applied.add(key)
        expected[int(sender["user_id"])] -= amount * 100
        expected[int(recipient["user_id"])] += amount * 100
    assert sum(r.status_code == 200 for r in replies) > 20
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        assert {u: await kudos.balance_of(conn, u) for u in expected} == expected
        assert all(balance >= kudos.OAUTH_FLOOR for balance in expected.values())
        assert "floor" not in {r for u in expected for r in await kudos.totals_by_reason(conn, u)}
    monkeypatch.setenv("HORDE_DATABASE_URL", horde.settings.effective_database_url)
    assert await verify_kudos() == []
