"""`/operations/*` and `PUT /status/modes` over the API, on SQLite and PostgreSQL (SEMANTICS.md 1.12,
1.8, 5, 8): IP and CIDR timeouts, blocked worker addresses, the growing abuse timeout, the modes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from horde.server.kit.clock import FakeClock
from horde.server.operations import service as operations
from horde.server.state import Horde
from tests.helpers import V2, new_user

ADMIN = {"admins": ["test_user#1"]}  # the `api_key` fixture's user: a moderator, and with this an admin
IMAGE = {"prompt": "a lighthouse", "params": {"steps": 10}}


def _error(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["rc"] == rc and body["message"], body


async def _call(
    client: httpx.AsyncClient, method: str, path: str, key: str, body: Any = None
) -> httpx.Response:
    return await client.request(method, f"{V2}/{path}", json=body, headers={"apikey": key})


async def _generate(client: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    return await client.post(f"{V2}/generate/async", json=IMAGE, headers={"apikey": key, **headers})


async def _pop(client: httpx.AsyncClient, key: str, name: str = "operations worker") -> httpx.Response:
    body = {"name": name, "models": ["stable_diffusion"], "max_pixels": 1048576}
    return await client.post(f"{V2}/generate/pop", json=body, headers={"apikey": key})


async def test_moderator_times_out_an_ip_and_lifts_it(client: httpx.AsyncClient, api_key: str) -> None:
    user = await new_user(client, "requester")
    assert (await _generate(client, user)).status_code == 202
    added = await _call(client, "POST", "operations/ipaddr", api_key, {"ipaddr": "127.0.0.1", "hours": 2})
    assert added.status_code == 200 and added.json() == {"message": "OK"}
    listed = (await _call(client, "GET", "operations/ipaddr", api_key)).json()
    assert listed == [{"ipaddr": "127.0.0.1/32", "seconds": 7200}]
    found = (await _call(client, "GET", "operations/ipaddr/127.0.0.1", api_key)).json()
    assert found == listed
    assert (await _call(client, "GET", "operations/ipaddr/127.0.0.2", api_key)).json() == []
    _error(await _generate(client, user), 403, "TimeoutIP")
    _error(await _pop(client, user), 403, "TimeoutIP")
    # the operations routes themselves stay open to the moderator lifting it
    deleted = await _call(client, "DELETE", "operations/ipaddr", api_key, {"ipaddr": "127.0.0.1"})
    assert deleted.status_code == 200
    assert (await _call(client, "GET", "operations/ipaddr", api_key)).json() == []
    assert (await _generate(client, user)).status_code == 202


async def test_a_cidr_covers_its_addresses_and_expires(
    client: httpx.AsyncClient, api_key: str, clock: FakeClock
) -> None:
    user = await new_user(client, "requester")
    added = await _call(client, "POST", "operations/ipaddr", api_key, {"ipaddr": "127.0.0.0/24", "hours": 1})
    assert added.status_code == 200, added.text
    found = (await _call(client, "GET", "operations/ipaddr/127.0.0.1", api_key)).json()
    assert found == [{"ipaddr": "127.0.0.0/24", "seconds": 3600}]
    _error(await _generate(client, user), 403, "TimeoutIP")
    clock.advance(3601)
    assert (await _generate(client, user)).status_code == 202
    assert (await _call(client, "GET", "operations/ipaddr", api_key)).json() == []


@pytest.mark.parametrize(
    ("ipaddr", "why"),
    [
        ("10.0.0.0/8", "too wide"),
        ("0.0.0.0/0", "too wide"),
        ("2001:db8::/16", "too wide"),
        ("300.1.2.3", "not a valid"),
        ("10.0.0.0/33", "not a valid"),
        ("not-an-ip", "not a valid"),
        ("1.2.3.4/x/y", "not a valid"),
    ],
)
async def test_malformed_and_too_wide_ranges_are_refused(
    client: httpx.AsyncClient, api_key: str, ipaddr: str, why: str
) -> None:
    response = await _call(client, "POST", "operations/ipaddr", api_key, {"ipaddr": ipaddr, "hours": 1})
    _error(response, 400, "BadRequest")
    assert why in response.json()["message"]
    assert (await _call(client, "GET", "operations/ipaddr", api_key)).json() == []
    _error(await _call(client, "DELETE", "operations/ipaddr", api_key, {"ipaddr": ipaddr}), 400, "BadRequest")


async def test_schema_limits(client: httpx.AsyncClient, api_key: str) -> None:
    for body in (
        {"ipaddr": "127.0.0.1", "hours": 0},
        {"ipaddr": "127.0.0.1", "hours": 721},
        {"ipaddr": "1.2"},
    ):
        response = await _call(client, "POST", "operations/ipaddr", api_key, body)
        assert response.status_code == 400 and "errors" in response.json(), response.text


async def test_ipv6_is_timed_out_as_its_64(client: httpx.AsyncClient, api_key: str) -> None:
    body = {"ipaddr": "2001:db8:1:2:aaaa::1", "hours": 1}
    assert (await _call(client, "POST", "operations/ipaddr", api_key, body)).status_code == 200
    listed = (await _call(client, "GET", "operations/ipaddr", api_key)).json()
    assert listed == [{"ipaddr": "2001:db8:1:2::/64", "seconds": 3600}]
    neighbour = (await _call(client, "GET", "operations/ipaddr/2001:db8:1:2:ffff::9", api_key)).json()
    assert neighbour == listed
    assert (await _call(client, "GET", "operations/ipaddr/2001:db8:1:3::1", api_key)).json() == []


async def test_plain_users_reach_no_operation(client: httpx.AsyncClient, api_key: str) -> None:
    user = await new_user(client, "plain")
    trusted = await new_user(client, "trusted", trusted=True)
    worker = await new_user(client, "owner")
    assert (await _pop(client, worker)).status_code == 200
    worker_id = (await client.get(f"{V2}/workers/name/operations worker")).json()["id"]
    calls = [
        ("GET", "operations/ipaddr", None),
        ("POST", "operations/ipaddr", {"ipaddr": "127.0.0.1", "hours": 1}),
        ("DELETE", "operations/ipaddr", {"ipaddr": "127.0.0.1"}),
        ("GET", "operations/ipaddr/127.0.0.1", None),
        ("PUT", f"operations/block_worker_ipaddr/{worker_id}", {"days": 1}),
        ("DELETE", f"operations/block_worker_ipaddr/{worker_id}", None),
    ]
    for key in (user, trusted, worker, "0000000000"):
        for method, path, body in calls:
            _error(await _call(client, method, path, key, body), 403, "NotModerator")
    for method, path, body in calls:
        _error(await _call(client, method, path, "not a key", body), 401, "InvalidAPIKey")
    assert (await _call(client, "GET", "operations/ipaddr", api_key)).json() == []
    assert (await _generate(client, user)).status_code == 202  # nothing was written


async def test_blocked_worker_address_refuses_pops_only(client: httpx.AsyncClient, api_key: str) -> None:
    owner = await new_user(client, "owner")
    assert (await _pop(client, owner)).status_code == 200
    worker_id = (await client.get(f"{V2}/workers/name/operations worker")).json()["id"]
    blocked = await _call(client, "PUT", f"operations/block_worker_ipaddr/{worker_id}", api_key, {"days": 2})
    assert blocked.status_code == 200 and blocked.json() == {"message": "OK"}
    _error(await _pop(client, owner), 403, "TimeoutIP")
    _error(await _pop(client, owner, "another worker"), 403, "TimeoutIP")  # the address, not the name
    assert (await _generate(client, owner)).status_code == 202  # requesters from there are not refused
    assert (await _call(client, "GET", "operations/ipaddr", api_key)).json() == []  # not a block range
    lifted = await _call(client, "DELETE", f"operations/block_worker_ipaddr/{worker_id}", api_key)
    assert lifted.status_code == 200
    assert (await _pop(client, owner)).status_code == 200
    missing = "00000000-0000-0000-0000-000000000000"
    _error(
        await _call(client, "PUT", f"operations/block_worker_ipaddr/{missing}", api_key, {"days": 1}),
        404,
        "WorkerNotFound",
    )
    too_long = await _call(
        client, "PUT", f"operations/block_worker_ipaddr/{worker_id}", api_key, {"days": 31}
    )
    assert too_long.status_code == 400 and "errors" in too_long.json()


async def test_abuse_timeouts_grow(
    client: httpx.AsyncClient, horde: Horde, api_key: str, clock: FakeClock
) -> None:
    user = await new_user(client, "requester")
    seen = []
    for _ in range(3):
        async with horde.db.unit() as conn:
            seen.append(await operations.time_out_abuser(conn, horde=horde, ipaddr="127.0.0.1"))
    assert seen == [540, 900, 1260]  # (2s+1) * 3 minutes, s = 1, 2, 3
    _error(await _generate(client, user), 403, "TimeoutIP")
    found = (await _call(client, "GET", "operations/ipaddr/127.0.0.1", api_key)).json()
    assert found == [{"ipaddr": "127.0.0.1/32", "seconds": 1260}]
    assert (await _call(client, "GET", "operations/ipaddr", api_key)).json() == []  # not a moderator's
    clock.advance(1261)
    assert (await _generate(client, user)).status_code == 202
    async with horde.db.unit() as conn:  # still within the day: the count goes on
        assert await operations.time_out_abuser(conn, horde=horde, ipaddr="127.0.0.1") == 1620
    clock.advance(24 * 3600 + 1)
    async with horde.db.unit() as conn:  # a day without abuse: it starts again
        assert await operations.time_out_abuser(conn, horde=horde, ipaddr="127.0.0.1") == 540
        assert await operations.time_out_abuser(conn, horde=horde, ipaddr="testclient") == 0


async def test_abuse_from_ipv6_counts_for_its_64(
    client: httpx.AsyncClient, horde: Horde, api_key: str
) -> None:
    async with horde.db.unit() as conn:
        await operations.time_out_abuser(conn, horde=horde, ipaddr="2001:db8::1")
        assert await operations.time_out_abuser(conn, horde=horde, ipaddr="2001:db8::2") == 900
    found = (await _call(client, "GET", "operations/ipaddr/2001:db8::ffff", api_key)).json()
    assert found == [{"ipaddr": "2001:db8::/64", "seconds": 900}]
    assert (await horde.guard.fresh()).seconds_left("2001:db8::3") == 900
    assert horde.guard.seconds_left("2001:db8:0:1::3") == 0


@pytest.mark.parametrize("settings_overrides", [{}, {"trusted_proxies": ["127.0.0.1"]}])
async def test_a_spoofed_forwarded_for_does_not_escape_nor_frame(
    client: httpx.AsyncClient, api_key: str, settings_overrides: dict[str, Any]
) -> None:
    user = await new_user(client, "requester")
    body = {"ipaddr": "203.0.113.7", "hours": 1}
    assert (await _call(client, "POST", "operations/ipaddr", api_key, body)).status_code == 200
    framed = await _generate(client, user, **{"X-Forwarded-For": "203.0.113.7"})
    if settings_overrides:  # the peer is a trusted proxy: the address it forwards is the client's
        _error(framed, 403, "TimeoutIP")
    else:  # an untrusted peer's header is ignored: the client is the peer
        assert framed.status_code == 202, framed.text
    await _call(client, "POST", "operations/ipaddr", api_key, {"ipaddr": "127.0.0.1", "hours": 1})
    escaped = await _generate(client, user, **{"X-Forwarded-For": "198.51.100.1"})
    if settings_overrides:
        assert escaped.status_code == 202, escaped.text
    else:
        _error(escaped, 403, "TimeoutIP")


@pytest.mark.parametrize("settings_overrides", [{"banned_client_agents": ["Bad-Bot:1:nobody"]}])
async def test_banned_client_agents(client: httpx.AsyncClient, api_key: str) -> None:
    _error(await _generate(client, api_key, **{"Client-Agent": "Bad-Bot:1:nobody"}), 403, "BannedClientAgent")
    assert (await _generate(client, api_key, **{"Client-Agent": "Good-Bot:1:somebody"})).status_code == 202


async def test_the_reference_banned_agent_by_default(client: httpx.AsyncClient, api_key: str) -> None:
    headers = {"Client-Agent": "My-Project:v0.0.1:My-Contact"}
    _error(await _generate(client, api_key, **headers), 403, "BannedClientAgent")
