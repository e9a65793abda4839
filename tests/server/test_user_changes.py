"""`PUT /users/{id}` field by field with its role rules, `DELETE /users/{id}` (soft delete, undelete, the
30-day wipe on a test clock), user records folded from events, and service accounts' proxies
(SEMANTICS.md 1.5, 2, 5; ADR 0022). On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from horde.server.kit.clock import FakeClock
from horde.server.kudos import service as kudos
from horde.server.kudos.scheduled import fold_postings
from horde.server.state import Horde
from horde.server.users.scheduled import fold_user_records
from tests.contract.swagger import check_body, requires_swagger

V2 = "/api/v2"
DAY = 86400.0
TEXT = {"prompt": "Once upon a time", "params": {"max_length": 32}}

pytestmark = requires_swagger


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admins": ["test_user#1"]}  # the `api_key` fixture's user: a moderator, and an admin


async def _user(client: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    body = {"username": name, "oauth_id": f"oauth-{name}", "moderator": False, "trusted": False, **extra}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def _put(client: httpx.AsyncClient, user_id: object, key: str, **body: Any) -> httpx.Response:
    return await client.put(f"{V2}/users/{user_id}", json=body, headers={"apikey": key})


async def _delete(client: httpx.AsyncClient, user_id: object, key: str) -> httpx.Response:
    return await client.delete(f"{V2}/users/{user_id}", headers={"apikey": key})


async def _details(client: httpx.AsyncClient, user_id: object, key: str | None = None) -> dict[str, Any]:
    response = await client.get(f"{V2}/users/{user_id}", headers={"apikey": key} if key else {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert check_body("UserDetails", body) == []
    return body


def _error(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["rc"] == rc and body["message"], body


# field -> (the least role that may set it, the reply); "self": the user themself or a moderator
FIELDS: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
    ({"kudos": 5}, "admin", {"new_kudos": 10005}),
    ({"monthly_kudos": 10}, "admin", {"monthly_kudos": 10}),
    ({"usage_multiplier": 2.5}, "admin", {"usage_multiplier": 2.5}),
    ({"moderator": True}, "admin", {"moderator": True}),
    ({"concurrency": 40}, "mod", {"concurrency": 40}),
    ({"worker_invited": 3}, "mod", {"worker_invited": 3}),
    ({"trusted": True}, "mod", {"trusted": True}),
    ({"flagged": True}, "mod", {"flagged": True}),
    ({"customizer": True}, "mod", {"customizer": True}),
    ({"vpn": True}, "mod", {"vpn": True}),
    ({"service": True}, "mod", {"service": True}),
    ({"education": True}, "mod", {"education": True}),
    ({"special": True}, "mod", {"special": True}),
    ({"reset_suspicion": True}, "mod", {"new_suspicion": 0}),
    ({"admin_comment": "watch this one"}, "mod", {"admin_comment": "watch this one"}),
    ({"public_workers": True}, "self", {"public_workers": True}),
    ({"contact": "me@example.org"}, "self", {"contact": "me@example.org"}),
    ({"username": "renamed"}, "self", {"username": "renamed#{id}"}),
]
REFUSAL = {"admin": "NotAdmin", "mod": "NotModerator", "self": "NotModerator"}


@pytest.mark.parametrize(("field", "least", "reply"), FIELDS, ids=[next(iter(f[0])) for f in FIELDS])
async def test_each_field_by_its_role(
    client: httpx.AsyncClient, api_key: str, field: dict[str, Any], least: str, reply: dict[str, Any]
) -> None:
    target = await _user(client, "target")
    other = await _user(client, "other")
    mod = await _user(client, "mod", moderator=True)  # a moderator, not an admin
    uid = target["user_id"]
    rc = REFUSAL[least]
    _error(await _put(client, uid, other["api_key"], **field), 403, rc)  # a plain user, on someone else
    if least != "self":
        _error(await _put(client, uid, target["api_key"], **field), 403, rc)  # on themself
    if least == "admin":
        _error(await _put(client, uid, mod["api_key"], **field), 403, "NotAdmin")
    before = await _details(client, uid, api_key)
    actor = {"admin": api_key, "mod": mod["api_key"], "self": target["api_key"]}[least]
    response = await _put(client, uid, actor, **field)
    assert response.status_code == 200, response.text
    expected = {k: v.format(id=uid) if isinstance(v, str) and "{id}" in v else v for k, v in reply.items()}
    assert response.json() == expected
    assert check_body("ModifyUser", response.json()) == []
    after = await _details(client, uid, api_key)
    name = next(iter(field))
    if name in after and name not in ("kudos", "monthly_kudos", "username"):
        assert after[name] == field[name] and before.get(name) != field[name]


async def test_a_user_cannot_raise_their_own_kudos_or_concurrency(
    client: httpx.AsyncClient, horde: Horde, api_key: str
) -> None:
    plain = await _user(client, "plain")
    mod = await _user(client, "mod", moderator=True)
    uid, key = plain["user_id"], plain["api_key"]
    _error(await _put(client, uid, key, kudos=100000), 403, "NotAdmin")
    _error(await _put(client, uid, key, concurrency=500), 403, "NotModerator")
    _error(await _put(client, uid, key, monthly_kudos=1000), 403, "NotAdmin")
    _error(await _put(client, uid, key, contact="me@example.org", concurrency=500), 403, "NotModerator")
    _error(await _put(client, mod["user_id"], mod["api_key"], kudos=100000), 403, "NotAdmin")
    await fold_postings(horde)
    me = await _details(client, uid, key)
    assert me["kudos"] == 10000 and me["concurrency"] == 30 and me.get("contact") is None
    assert (await _details(client, mod["user_id"]))["kudos"] == 10000


async def test_suspicion_reset_and_undelete_rules(
    client: httpx.AsyncClient, horde: Horde, api_key: str
) -> None:
    from horde.server.users import service as users
    from horde.server.users.models import Suspicion

    plain = await _user(client, "plain")
    uid = plain["user_id"]
    principal = await horde.users.lookup(horde.db, plain["api_key"])
    assert principal is not None
    async with horde.db.transaction() as conn:
        for reason in (Suspicion.USERNAME_LONG, Suspicion.UNREASONABLY_FAST, Suspicion.UNREASONABLY_FAST):
            await users.report_suspicion(conn, user=principal, reason=reason)
    assert (await _details(client, uid, api_key))["suspicious"] == 3
    assert (await _put(client, uid, api_key, reset_suspicion=True)).json() == {"new_suspicion": 0}
    assert (await _details(client, uid, api_key))["suspicious"] == 0
    _error(await _put(client, uid, api_key, undelete=True), 400, "UserNotDeleted")
    _error(await _put(client, uid, plain["api_key"], undelete=True), 400, "UserNotDeleted")
    _error(await _put(client, uid, api_key, filtered=True), 400, "BadRequest")  # not built: never ignored


async def test_delete_then_wipe_after_30_days(
    client: httpx.AsyncClient, horde: Horde, clock: FakeClock
) -> None:
    gone = await _user(client, "gone")
    other = await _user(client, "other")
    mod = await _user(client, "mod", moderator=True)
    uid, key = gone["user_id"], gone["api_key"]
    assert (
        await client.post(f"{V2}/generate/text/async", json=TEXT, headers={"apikey": key})
    ).status_code == 202
    _error(await _delete(client, uid, other["api_key"]), 403, "NotUserOrMod")
    _error(await _delete(client, uid, "0000000000"), 403, "NotUserOrMod")
    _error(await _delete(client, mod["user_id"], mod["api_key"]), 403, "CannotDeleteMod")
    _error(await _delete(client, 0, mod["api_key"]), 403, "AnonForbiddenUserMod")
    _error(await _delete(client, 999999, mod["api_key"]), 404, "UserNotFound")
    response = await _delete(client, uid, key)
    assert response.status_code == 200 and check_body("SimpleResponse", response.json()) == []
    # the key is refused everywhere but on its own record; the user is hidden from the pages
    _error(
        await client.post(f"{V2}/generate/text/async", json=TEXT, headers={"apikey": key}), 403, "DeletedUser"
    )
    _error(await _put(client, uid, key, contact="still here?"), 403, "DeletedUser")
    _error(await client.get(f"{V2}/find_user", headers={"apikey": key}), 403, "DeletedUser")
    _error(await _put(client, other["user_id"], key, undelete=True), 403, "DeletedUser")
    assert (await _details(client, uid, mod["api_key"]))["deleted"] is True
    listed = (await client.get(f"{V2}/users")).json()
    assert int(uid) not in [u["id"] for u in listed] and int(other["user_id"]) in [u["id"] for u in listed]
    # a second call wipes only after 30 days without activity since the deletion
    _error(await _delete(client, uid, key), 403, "CannotWipeActiveUser")
    clock.advance(29 * DAY)
    _error(await _delete(client, uid, mod["api_key"]), 403, "CannotWipeActiveUser")
    clock.advance(1 * DAY + 1)
    response = await _delete(client, uid, key)
    assert response.status_code == 200, response.text
    _error(await client.get(f"{V2}/users/{uid}"), 404, "UserNotFound")
    _error(await _delete(client, uid, mod["api_key"]), 404, "UserNotFound")
    _error(await client.get(f"{V2}/find_user", headers={"apikey": key}), 404, "UserNotFound")
    _error(await _put(client, other["user_id"], key, contact="who am I"), 401, "InvalidAPIKey")
    # the postings stay, under the id, as history: every balance still adds up
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        kept = await conn.scalar(
            select(func.count()).select_from(kudos.postings).where(kudos.postings.c.user_id == int(uid))
        )
        assert kept and kept > 0
        assert await kudos.verify(conn) == []


async def test_a_deleted_user_undeletes_itself(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _user(client, "plain")
    uid, key = plain["user_id"], plain["api_key"]
    assert (await _delete(client, uid, api_key)).status_code == 200  # by a moderator
    response = await _put(client, uid, key, undelete=True)
    assert response.status_code == 200 and response.json() == {"undeleted": True}
    assert (
        await client.post(f"{V2}/generate/text/async", json=TEXT, headers={"apikey": key})
    ).status_code == 202
    assert (await _details(client, uid, key))["deleted"] is False


async def _complete_text_job(client: httpx.AsyncClient, requester: str, worker_owner: str) -> None:
    assert (
        await client.post(f"{V2}/generate/text/async", json=TEXT, headers={"apikey": requester})
    ).status_code == 202
    pop = {"name": "Records Worker", "models": ["test-model"]}
    job = (await client.post(f"{V2}/generate/text/pop", json=pop, headers={"apikey": worker_owner})).json()
    submit = {"id": job["id"], "generation": "there was a horde"}
    done = await client.post(f"{V2}/generate/text/submit", json=submit, headers={"apikey": worker_owner})
    assert done.status_code == 200, done.text


async def test_records_fold_from_events_with_the_usage_multiplier(
    client: httpx.AsyncClient, horde: Horde, api_key: str
) -> None:
    requester = await _user(client, "requester")
    owner = await _user(client, "owner")
    assert (await _put(client, requester["user_id"], api_key, usage_multiplier=2)).status_code == 200
    for _ in range(2):
        await _complete_text_job(client, requester["api_key"], owner["api_key"])
    assert (await _details(client, requester["user_id"]))["records"]["request"]["text"] == 0  # not folded yet
    assert await fold_user_records(horde) == 2
    assert await fold_user_records(horde) == 0  # nothing folds twice
    asked = (await _details(client, requester["user_id"]))["records"]
    gave = (await _details(client, owner["user_id"]))["records"]
    assert asked["request"] == {"image": 0, "text": 2, "interrogation": 0}
    assert gave["fulfillment"] == {"image": 0, "text": 2, "interrogation": 0}
    assert gave["contribution"]["tokens"] > 0 and asked["contribution"]["tokens"] == 0
    assert asked["usage"]["tokens"] == 2 * gave["contribution"]["tokens"]  # statistics only: x2
    assert gave["usage"]["tokens"] == 0 and gave["request"]["text"] == 0


async def test_service_accounts_proxy_for_their_clients(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _user(client, "plain")
    proxy = await _user(client, "proxy")
    _error(
        await _put(client, plain["user_id"], plain["api_key"], generate_proxy_passkey=True),
        403,
        "NonServiceForbidden",
    )
    _error(
        await _put(client, proxy["user_id"], plain["api_key"], generate_proxy_passkey=True),
        403,
        "NotModerator",
    )
    assert (await _put(client, proxy["user_id"], api_key, service=True)).json() == {"service": True}
    response = await _put(client, proxy["user_id"], proxy["api_key"], generate_proxy_passkey=True)
    assert response.status_code == 200, response.text
    passkey = response.json()["proxy_passkey"]
    assert set(response.json()) == {"proxy_passkey"} and len(passkey) == 16
    assert "proxy_passkey" not in await _details(client, proxy["user_id"], api_key)  # shown once, kept hashed
    timeout = {"ipaddr": "10.9.9.9", "hours": 1}
    added = await client.post(f"{V2}/operations/ipaddr", json=timeout, headers={"apikey": api_key})
    assert added.status_code == 200, added.text
    proxied = {**TEXT, "proxied_account": "a client of the proxy"}

    async def generate(key: str, **headers: str) -> httpx.Response:
        return await client.post(
            f"{V2}/generate/text/async", json=proxied, headers={"apikey": key, **headers}
        )

    # with its passkey, Proxied-For is the client's address: the timed-out IP is refused
    _error(
        await generate(proxy["api_key"], **{"Proxy-Authorization": passkey, "Proxied-For": "10.9.9.9"}),
        403,
        "TimeoutIP",
    )
    assert (await generate(proxy["api_key"], **{"Proxied-For": "10.9.9.9"})).status_code == 202
    wrong = {"Proxy-Authorization": "x" * 16, "Proxied-For": "10.9.9.9"}
    assert (await generate(proxy["api_key"], **wrong)).status_code == 202
    _error(await generate(plain["api_key"]), 400, "OnlyServiceAccountProxy")


async def test_recorded_activity_postpones_the_wipe(
    client: httpx.AsyncClient, horde: Horde, clock: FakeClock
) -> None:
    from horde.server.kit.orm import utc
    from horde.server.users.records import RECORDED

    gone = await _user(client, "gone")
    worker_owner = await _user(client, "worker_owner")
    uid, key = gone["user_id"], gone["api_key"]
    assert (await _delete(client, uid, key)).status_code == 200
    clock.advance(20 * DAY)  # a job the user had queued finishes after the deletion: that is activity
    async with horde.db.transaction() as conn:
        values = {"rkind": "text", "requester": int(uid), "owner": int(worker_owner["user_id"])}
        await conn.execute(RECORDED, {**values, "things": 12.0, "rec_at": utc(clock.now())})
    assert await fold_user_records(horde) == 1
    clock.advance(11 * DAY)  # 31 days after the deletion, 11 after the activity
    _error(await _delete(client, uid, key), 403, "CannotWipeActiveUser")
    clock.advance(20 * DAY)
    assert (await _delete(client, uid, key)).status_code == 200


async def test_concurrency_caps_requests_in_flight(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _user(client, "plain")
    assert (await _put(client, plain["user_id"], api_key, concurrency=1)).json() == {"concurrency": 1}
    headers = {"apikey": plain["api_key"]}
    assert (await client.post(f"{V2}/generate/text/async", json=TEXT, headers=headers)).status_code == 202
    _error(await client.post(f"{V2}/generate/text/async", json=TEXT, headers=headers), 429, "TooManyPrompts")
