"""`GET`/`PUT /status/modes` and what each mode does, on SQLite and PostgreSQL (SEMANTICS.md 1.8, 5, 8)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from horde.server.kit.clock import FakeClock
from horde.server.operations.guard import Guard
from horde.server.state import Horde
from tests.helpers import V2, new_user

ADMIN = {"admins": ["test_user#1"]}  # the `api_key` fixture's user: a moderator, and with this an admin
TEXT = {"prompt": "Once upon a time", "params": {"max_length": 32, "n": 2}}


def _error(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["rc"] == rc, response.text


async def _put_modes(client: httpx.AsyncClient, key: str, body: dict[str, Any]) -> httpx.Response:
    return await client.put(f"{V2}/status/modes", json=body, headers={"apikey": key})


async def _text(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(f"{V2}/generate/text/async", json=TEXT, headers={"apikey": key})


async def _text_pop(client: httpx.AsyncClient, key: str, name: str = "modes worker") -> dict[str, Any]:
    body = {"name": name, "models": ["test-model"], "max_length": 64}
    response = await client.post(f"{V2}/generate/text/pop", json=body, headers={"apikey": key})
    assert response.status_code == 200, response.text
    popped: dict[str, Any] = response.json()
    return popped


@pytest.mark.parametrize("settings_overrides", [ADMIN])
async def test_maintenance_on_and_off_with_requests_in_flight(
    client: httpx.AsyncClient, api_key: str
) -> None:
    user = await new_user(client, "requester")
    worker = await new_user(client, "worker_owner")
    accepted = await _text(client, user)
    assert accepted.status_code == 202, accepted.text
    request_id = accepted.json()["id"]
    held = await _text_pop(client, worker)  # one of its two jobs is in a worker's hands
    assert held["id"]
    switched = await _put_modes(client, api_key, {"maintenance_mode": True})
    assert switched.status_code == 200, switched.text
    assert switched.json() == {"maintenance_mode": True, "invite_only_mode": False, "raid_mode": False}
    assert (await client.get(f"{V2}/status/modes")).json() == {
        "maintenance_mode": True,
        "invite_only_mode": False,
    }
    _error(await _text(client, user), 400, "MaintenanceMode")
    image = {"prompt": "a lighthouse", "params": {"steps": 10}}
    _error(
        await client.post(f"{V2}/generate/async", json=image, headers={"apikey": user}),
        400,
        "MaintenanceMode",
    )
    assert (await _text_pop(client, worker))["id"] is None  # the queued job was dropped
    submitted = await client.post(
        f"{V2}/generate/text/submit",
        json={"id": held["id"], "generation": "the end"},
        headers={"apikey": worker},
    )
    assert submitted.status_code == 200, submitted.text  # the job in flight finishes
    status = (await client.get(f"{V2}/generate/text/status/{request_id}")).json()
    assert status["done"] is True and [g["text"] for g in status["generations"]] == ["the end"]
    off = await _put_modes(client, api_key, {"maintenance_mode": False})
    assert off.status_code == 200 and off.json()["maintenance_mode"] is False
    assert (await _text(client, user)).status_code == 202


@pytest.mark.parametrize("settings_overrides", [ADMIN])
async def test_who_may_set_which_mode(client: httpx.AsyncClient, api_key: str) -> None:
    moderator = await new_user(client, "moderator", moderator=True)
    plain = await new_user(client, "plain")
    _error(await _put_modes(client, moderator, {"maintenance_mode": True}), 403, "NotAdmin")
    _error(
        await _put_modes(client, moderator, {"raid_mode": True, "maintenance_mode": True}), 403, "NotAdmin"
    )
    _error(await _put_modes(client, plain, {"raid_mode": True}), 403, "NotModerator")
    _error(await _put_modes(client, plain, {"invite_only_mode": True}), 403, "NotModerator")
    _error(await _put_modes(client, "0000000000", {"maintenance_mode": True}), 403, "NotAdmin")
    _error(await _put_modes(client, moderator, {}), 400, "NoHordeModSelected")
    assert (await client.get(f"{V2}/status/modes", headers={"apikey": moderator})).json() == {
        "maintenance_mode": False,
        "invite_only_mode": False,
        "raid_mode": False,
    }  # fmt: skip  (nothing refused was written)
    raid = await _put_modes(client, moderator, {"raid_mode": True})
    assert raid.status_code == 200 and raid.json()["raid_mode"] is True
    assert (await client.get(f"{V2}/status/modes", headers={"apikey": api_key})).json()["raid_mode"] is True
    assert "raid_mode" not in (await client.get(f"{V2}/status/modes")).json()
    _error(await client.get(f"{V2}/status/modes", headers={"apikey": plain}), 403, "NotModerator")


async def test_invite_only_gates_new_workers(client: httpx.AsyncClient, api_key: str) -> None:
    owner = await new_user(client, "owner")
    await _text_pop(client, owner, "existing worker")
    assert (await _put_modes(client, api_key, {"invite_only_mode": True})).status_code == 200
    body = {"name": "a new worker", "models": ["test-model"]}
    refused = await client.post(f"{V2}/generate/text/pop", json=body, headers={"apikey": owner})
    _error(refused, 403, "WorkerInviteOnly")
    await _text_pop(client, owner, "existing worker")  # workers already here go on
    found = (await client.get(f"{V2}/find_user", headers={"apikey": owner})).json()
    invited = await client.put(
        f"{V2}/users/{found['id']}", json={"worker_invited": 2}, headers={"apikey": api_key}
    )
    assert invited.status_code == 200, invited.text
    await _text_pop(client, owner, "a new worker")
    assert (await _put_modes(client, api_key, {"invite_only_mode": False})).status_code == 200


async def test_other_nodes_see_a_mode_within_a_second(
    client: httpx.AsyncClient, horde: Horde, api_key: str, clock: FakeClock
) -> None:
    other = Guard(horde.db, clock)  # another node's view of the same database
    assert (await other.fresh()).modes.raid is False
    assert (await _put_modes(client, api_key, {"raid_mode": True})).status_code == 200
    assert (await other.fresh()).modes.raid is False  # its view is not a second old yet
    clock.advance(1.0)
    assert (await other.fresh()).modes.raid is True
