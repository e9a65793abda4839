"""`/find_user`, `/users`, `/users/{id}`, the `/register` page and `horde users create`."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from horde.cli.main import main
from horde.server.kudos import service as kudos
from horde.server.kudos.scheduled import fold_postings
from horde.server.state import Horde
from horde.server.users import service as users
from horde.server.users.scheduled import fold_user_records
from tests.contract.swagger import check_body, requires_swagger

V2 = "/api/v2"
PRIVILEGED = {"evaluating_kudos", "monthly_kudos", "suspicious", "admin_comment"}
SELF_ONLY = {"sharedkey_ids", "active_generations", "vpn", "special", "contact"}

pytestmark = requires_swagger


async def _new_user(client: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    body = {"username": name, "oauth_id": f"oauth-{name}", "moderator": False, "trusted": False, **extra}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def _details(client: httpx.AsyncClient, path: str, key: str | None = None) -> dict[str, Any]:
    response = await client.get(f"{V2}/{path}", headers={"apikey": key} if key else {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert check_body("UserDetails", body) == []
    return body


async def _put(client: httpx.AsyncClient, user_id: object, key: str, **body: Any) -> httpx.Response:
    return await client.put(f"{V2}/users/{user_id}", json=body, headers={"apikey": key})


def _error(response: httpx.Response, status: int, rc: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["rc"] == rc and body["message"]
    return body


async def test_find_user(client: httpx.AsyncClient, api_key: str) -> None:
    me = await _details(client, "find_user", api_key)
    assert me["username"] == f"test_user#{me['id']}" and me["moderator"] is True and me["trusted"] is True
    assert me["kudos"] == 10000 and me["kudos_details"]["admin"] == 10000
    assert me["pseudonymous"] is False and me["worker_count"] == 0 and me["worker_ids"] == []
    assert set(me) | {"contact"} >= SELF_ONLY and not PRIVILEGED & set(me)  # level 1, even for a moderator
    assert me["active_generations"] == {"text": [], "image": [], "alchemy": []}
    anon = await _details(client, "find_user", "0000000000")
    assert anon["id"] == 0 and "active_generations" not in anon
    _error(await client.get(f"{V2}/find_user", headers={"apikey": "no-such-key"}), 404, "UserNotFound")
    _error(await client.get(f"{V2}/find_user"), 404, "UserNotFound")


async def test_levels_of_detail(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _new_user(client, "plain")
    other = await _new_user(client, "other")
    request = {"prompt": "Once upon a time", "params": {"max_length": 32}}
    response = await client.post(
        f"{V2}/generate/text/async", json=request, headers={"apikey": plain["api_key"]}
    )
    assert response.status_code == 202, response.text
    path = f"users/{plain['user_id']}"
    public = await _details(client, path)
    assert not (PRIVILEGED | SELF_ONLY | {"worker_ids"}) & set(public)
    assert public["username"] == plain["alias"] and public["kudos"] == 10000 - 1  # the activation tax
    assert not (PRIVILEGED | SELF_ONLY) & set(await _details(client, path, other["api_key"]))
    own = await _details(client, path, plain["api_key"])
    assert own["active_generations"]["text"] == [response.json()["id"]] and not PRIVILEGED & set(own)
    moderated = await _details(client, path, api_key)
    assert moderated["suspicious"] == 0 and moderated["monthly_kudos"] == {"amount": 0}
    assert moderated["evaluating_kudos"] == 0
    _error(await client.get(f"{V2}/users/999999"), 404, "UserNotFound")
    _error(await client.get(f"{V2}/users/plain%231"), 404, "UserNotFound")
    _error(await client.get(f"{V2}/{path}", headers={"apikey": "no-such-key"}), 401, "InvalidAPIKey")


async def test_workers_and_records(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    plain = await _new_user(client, "plain")
    request = {"prompt": "Once upon a time", "params": {"max_length": 32}}
    assert (
        await client.post(f"{V2}/generate/text/async", json=request, headers={"apikey": api_key})
    ).status_code == 202
    pop = {"name": "Plain Worker", "models": ["test-model"]}
    job = (
        await client.post(f"{V2}/generate/text/pop", json=pop, headers={"apikey": plain["api_key"]})
    ).json()
    submit = {"id": job["id"], "generation": "there was a horde"}
    response = await client.post(
        f"{V2}/generate/text/submit", json=submit, headers={"apikey": plain["api_key"]}
    )
    # SEMANTICS 4.2 by hand: "test-model" is unknown and the owner untrusted, so the reward is the
    # context multiplier of the prompt's 4 tokens: 1.2 + 2.2**log2(4/1024) = 1.2 + 2.2**-8 = 1.2018
    reward = 1.2
    assert response.json()["reward"] == pytest.approx(reward)
    worker_id = (await client.get(f"{V2}/workers/name/Plain Worker")).json()["id"]
    before = await _details(client, "find_user", plain["api_key"])
    assert before["records"]["fulfillment"] == {"image": 0, "text": 0, "interrogation": 0}  # not folded yet
    assert await fold_user_records(horde) == 1
    owner = await _details(client, "find_user", plain["api_key"])
    assert owner["worker_count"] == 1 and owner["worker_ids"] == [worker_id]
    assert owner["records"]["fulfillment"] == {"image": 0, "text": 1, "interrogation": 0}
    assert owner["records"]["contribution"]["tokens"] > 0 and owner["records"]["usage"]["tokens"] == 0
    assert owner["records"]["request"] == {"image": 0, "text": 0, "interrogation": 0}
    # an unknown bridge earns x0.75 and an untrusted owner gets half of it, the rest in escrow (4.5)
    paid = round(reward * 0.75 * 100)  # hundredths
    escrowed = paid // 2
    assert owner["kudos_details"]["accumulated"] == pytest.approx((paid - escrowed) / 100)
    assert owner["kudos"] == pytest.approx(10000 + (paid - escrowed) / 100)
    moderated = await _details(client, f"users/{plain['user_id']}", api_key)
    assert moderated["evaluating_kudos"] == pytest.approx(escrowed / 100)
    requester = await _details(client, "find_user", api_key)
    assert requester["kudos_details"]["accumulated"] == pytest.approx(-(reward + 1))  # the reward + 1 tax
    assert requester["records"]["request"] == {"image": 0, "text": 1, "interrogation": 0}
    assert requester["records"]["usage"]["tokens"] == owner["records"]["contribution"]["tokens"]
    assert requester["records"]["fulfillment"]["text"] == 0


async def test_list_pages_and_sorts(client: httpx.AsyncClient, horde: Horde) -> None:
    async with horde.db.transaction() as conn:
        for i in range(27):
            new = await users.create_user(
                conn, username=f"user{i}", oauth_id=f"o{i}", pepper="p", now=horde.clock.now()
            )
            legs = [
                kudos.Leg(amount=i * 100, user_id=new.user.id),
                kudos.Leg(amount=-i * 100, system="admin"),
            ]
            await kudos.post(conn, legs=legs, reason="admin", now=horde.clock.now())
    await fold_postings(horde)  # the list sorts by folded balances (they lag postings by a fold)
    first = (await client.get(f"{V2}/users")).json()
    assert check_body("UserDetails[]", first) == []
    assert len(first) == 25 and [u["kudos"] for u in first[:3]] == [26, 25, 24]
    assert not {"worker_ids", "contact", "active_generations", "suspicious"} & set(first[0])
    second = (await client.get(f"{V2}/users", params={"page": 2})).json()
    assert [u["username"].split("#")[0] for u in second] == ["user1", "user0"]
    by_age = (await client.get(f"{V2}/users", params={"sort": "age"})).json()
    assert [u["username"].split("#")[0] for u in by_age[:2]] == ["user0", "user1"]
    assert (await client.get(f"{V2}/users", params={"page": 10001})).json() == []


async def test_moderator_changes(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _new_user(client, "plain")
    uid, key = plain["user_id"], plain["api_key"]
    response = await _put(client, uid, api_key, concurrency=50, trusted=True, worker_invited=2, vpn=True)
    assert response.status_code == 200, response.text
    assert response.json() == {"concurrency": 50, "trusted": True, "worker_invited": 2, "vpn": True}
    assert check_body("ModifyUser", response.json()) == []
    changed = await _details(client, f"users/{uid}", api_key)
    assert (changed["concurrency"], changed["trusted"], changed["worker_invited"], changed["vpn"]) == (
        50,
        True,
        2,
        True,
    )
    # the key cache forgets: a flagged owner's worker is refused on its very next pop
    assert (
        await client.post(f"{V2}/generate/text/pop", json={"name": "Plain Worker"}, headers={"apikey": key})
    ).status_code == 200
    assert (await _put(client, uid, api_key, flagged=True)).json() == {"flagged": True}
    refused = await client.post(
        f"{V2}/generate/text/pop", json={"name": "Plain Worker"}, headers={"apikey": key}
    )
    _error(refused, 403, "WorkerFlaggedMaintenance")
    response = await _put(client, uid, api_key, admin_comment="watch this one")
    assert response.json() == {"admin_comment": "watch this one"}
    assert (await _details(client, f"users/{uid}", api_key))["admin_comment"] == "watch this one"
    _error(await _put(client, uid, key, concurrency=10), 403, "NotModerator")
    _error(await _put(client, uid, key, admin_comment="I am fine, really"), 403, "NotModerator")
    _error(await _put(client, uid, api_key, moderator=True), 403, "NotAdmin")
    too_many = await _put(client, uid, api_key, concurrency=501)
    assert too_many.status_code == 400 and "concurrency" in too_many.json()["errors"]


@pytest.mark.parametrize("settings_overrides", [{"admins": ["test_user#1"]}])
async def test_admin_makes_moderators(client: httpx.AsyncClient, api_key: str) -> None:
    me = await _details(client, "find_user", api_key)
    assert me["username"] == "test_user#1"
    plain = await _new_user(client, "plain")
    response = await _put(client, plain["user_id"], api_key, moderator=True)
    assert response.status_code == 200 and response.json() == {"moderator": True}
    assert (await _details(client, f"users/{plain['user_id']}"))["moderator"] is True


@pytest.mark.parametrize("settings_overrides", [{"admins": ["test_user#1"]}])
async def test_admin_rights_follow_the_user_id(client: httpx.AsyncClient, api_key: str) -> None:
    # a moderator renames the admin: the rights stay with user 1, and nobody gains them by the name
    assert (await _put(client, 1, api_key, username="renamed")).status_code == 200
    plain = await _new_user(client, "test_user")
    _error(await _put(client, 1, plain["api_key"], moderator=True), 403, "NotAdmin")
    response = await _put(client, plain["user_id"], api_key, moderator=True)
    assert response.status_code == 200 and response.json() == {"moderator": True}


async def test_huge_integers_are_a_400(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _new_user(client, "plain")
    for value in (2**63, 2**31, -1):
        response = await _put(client, plain["user_id"], api_key, worker_invited=value)
        assert response.status_code == 400, response.text
        assert "worker_invited" in response.json()["errors"]
    assert (await _put(client, plain["user_id"], api_key, worker_invited=3)).status_code == 200


async def test_own_changes(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _new_user(client, "plain")
    other = await _new_user(client, "other")
    uid, key = plain["user_id"], plain["api_key"]
    response = await _put(client, uid, key, username="renamed", contact="me@example.com", public_workers=True)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "username": f"renamed#{uid}",
        "contact": "me@example.com",
        "public_workers": True,
    }
    assert check_body("ModifyUser", response.json()) == []
    own = await _details(client, "find_user", key)
    assert own["username"] == f"renamed#{uid}" and own["contact"] == "me@example.com"
    assert "worker_ids" in await _details(client, f"users/{uid}")  # public_workers shows them to anyone
    assert (await _put(client, uid, api_key, public_workers=False)).json() == {"public_workers": False}
    _error(await _put(client, uid, other["api_key"], public_workers=True), 403, "NotModerator")
    _error(await _put(client, uid, key, username="x" * 31), 400, "TooLongUserName")
    _error(await _put(client, uid, "0000000000", contact="anon@example.com"), 403, "AnonForbiddenUserMod")
    _error(await _put(client, 0, api_key, concurrency=5), 403, "AnonForbiddenUserMod")
    _error(await _put(client, uid, key), 400, "NoUserModSelected")
    _error(await _put(client, 999999, api_key, trusted=True), 404, "UserNotFound")
    _error(await _put(client, uid, "no-such-key", trusted=True), 401, "InvalidAPIKey")


@pytest.mark.parametrize("field", [{"filtered": True}])
async def test_unbuilt_fields_are_refused(
    client: httpx.AsyncClient, api_key: str, field: dict[str, Any]
) -> None:
    plain = await _new_user(client, "plain")
    body = _error(await _put(client, plain["user_id"], api_key, trusted=True, **field), 400, "BadRequest")
    assert next(iter(field)) in body["message"]
    assert (await _details(client, f"users/{plain['user_id']}"))["trusted"] is False  # nothing written


async def test_register_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/register")
    assert page.status_code == 200 and 'name="username"' in page.text
    assert page.headers["content-type"].startswith("text/html")
    form = {"content-type": "application/x-www-form-urlencoded"}
    issued = await client.post("/register", content="username=Ada+%3Cb%3E", headers=form)
    assert issued.status_code == 201 and issued.headers["cache-control"] == "no-store"
    assert "Ada &lt;b&gt;#" in issued.text
    match = re.search(r"<code>([A-Za-z0-9_-]{22})</code>", issued.text)
    assert match is not None
    me = await _details(client, "find_user", match.group(1))
    assert me["username"].startswith("Ada <b>#") and me["pseudonymous"] is True and me["kudos"] == 0
    refused = await client.post("/register", content="username=" + "x" * 31, headers=form)
    assert refused.status_code == 400 and "30 characters" in refused.text
    assert (await client.post("/register", content="username=+", headers=form)).status_code == 400
    assert "/register" not in (await client.get("/api/swagger.json")).json()["paths"]


@pytest.mark.committed  # the CLI writes through an engine of its own
async def test_cli_creates_users(client: httpx.AsyncClient, horde: Horde) -> None:
    env = {
        "HORDE_DATABASE_URL": horde.settings.effective_database_url,
        "HORDE_DATA_DIR": str(horde.settings.data_dir),
        "HORDE_API_KEY_PEPPER": horde.pepper,
    }
    args = ["users", "create", "--username", "operator", "--moderator"]
    result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env)
    assert result.exit_code == 0, result.output
    key = re.search(r"^apikey: (\S+)$", result.output, re.MULTILINE)
    assert key is not None and "user: operator#" in result.output
    me = await _details(client, "find_user", key.group(1))
    assert me["moderator"] is True and me["trusted"] is True and me["pseudonymous"] is False
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["users", "create", "--username", "y" * 31], env=env
    )
    assert result.exit_code != 0 and "30 characters" in result.output
