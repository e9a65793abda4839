"""`/workers/messages` over the API and their delivery in pops, on SQLite and PostgreSQL (SEMANTICS.md
1.4, 3.3.8; ADR 0016)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from horde.server.kit.clock import FakeClock
from horde.server.kit.orm import table
from horde.server.messages.models import WorkerMessage
from horde.server.messages.scheduled import prune_expired_messages
from horde.server.state import Horde
from tests.helpers import V2

TEXT_POP = {"models": ["test-model"], "max_length": 256}


async def _user(client: httpx.AsyncClient, name: str, **roles: bool) -> str:
    body = {"username": name, "oauth_id": f"oauth-{name}", "moderator": False, "trusted": False, **roles}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


async def _pop(client: httpx.AsyncClient, key: str, name: str) -> dict[str, Any]:
    response = await client.post(
        f"{V2}/generate/text/pop", json={"name": name, **TEXT_POP}, headers={"apikey": key}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _worker(client: httpx.AsyncClient, key: str, name: str) -> str:
    await _pop(client, key, name)
    return str((await client.get(f"{V2}/workers/name/{name}")).json()["id"])


async def _send(client: httpx.AsyncClient, key: str, **body: Any) -> httpx.Response:
    return await client.post(f"{V2}/workers/messages", json=body, headers={"apikey": key})


def _error(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["rc"] == rc, response.text


async def _count(horde: Horde) -> int:
    async with horde.db.autocommit() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table(WorkerMessage))) or 0)


async def test_owner_messages_own_worker_and_pop_carries_it(client: httpx.AsyncClient, horde: Horde) -> None:
    owner = await _user(client, "msg_owner")
    worker_id = await _worker(client, owner, "message worker one")
    assert (await _pop(client, owner, "message worker one"))["messages"] == []
    sent = await _send(
        client, owner, worker_id=worker_id, message="Please update", origin="spoofed", expiry=2
    )
    assert sent.status_code == 200, sent.text
    message = sent.json()
    assert message["worker_id"] == worker_id and message["expiry"] == 2
    assert message["origin"].startswith("msg_owner#")  # only moderators choose the origin
    popped = (await _pop(client, owner, "message worker one"))["messages"]
    assert [m["id"] for m in popped] == [message["id"]]
    assert popped[0]["message"] == "Please update" and popped[0]["expiry"]
    got = await client.get(f"{V2}/workers/messages/{message['id']}")
    assert got.json()["message"] == "Please update"
    listed = await client.get(f"{V2}/workers/messages", headers={"apikey": owner})
    assert [m["id"] for m in listed.json()] == [message["id"]]
    deleted = await client.delete(f"{V2}/workers/messages/{message['id']}", headers={"apikey": owner})
    assert deleted.json() == {"message": "OK"}
    assert (await _pop(client, owner, "message worker one"))["messages"] == []
    _error(await client.get(f"{V2}/workers/messages/{message['id']}"), 404, "WorkermessageNotFound")
    assert await _count(horde) == 0


async def test_refusals_change_nothing(client: httpx.AsyncClient, horde: Horde) -> None:
    owner = await _user(client, "msg_owner_two")
    other = await _user(client, "msg_other")
    worker_id = await _worker(client, owner, "message worker two")
    _error(await _send(client, other, worker_id=worker_id, message="hi"), 403, "MessagesOnlyOwnWorkers")
    _error(await _send(client, other, message="to everyone"), 403, "MessagesOnlyOwnWorkers")
    _error(await _send(client, "0000000000", worker_id=worker_id, message="hi"), 403, "AnonForbidden")
    _error(await _send(client, owner, worker_id=str(uuid.uuid4()), message="hi"), 404, "WorkerNotFound")
    for expiry in (0, 721, "soon"):
        assert (
            await _send(client, owner, worker_id=worker_id, message="hi", expiry=expiry)
        ).status_code == 400
    assert (await _send(client, owner, worker_id=worker_id, message="")).status_code == 400
    assert (await _send(client, owner, worker_id=worker_id, message="x" * 10241)).status_code == 400
    assert await _count(horde) == 0
    message_id = (await _send(client, owner, worker_id=worker_id, message="mine")).json()["id"]
    path = f"{V2}/workers/messages/{message_id}"
    _error(await client.delete(path, headers={"apikey": other}), 403, "NotOwner")
    listed = await client.get(f"{V2}/workers/messages", params={"user_id": "1"}, headers={"apikey": other})
    _error(listed, 403, "NotModerator")
    assert (await client.get(f"{V2}/workers/messages", headers={"apikey": other})).json() == []
    bad = await client.get(f"{V2}/workers/messages", params={"validity": "soon"}, headers={"apikey": other})
    _error(bad, 400, "BadRequest")
    assert await _count(horde) == 1


async def test_moderator_broadcast_and_expiry(
    client: httpx.AsyncClient, horde: Horde, clock: FakeClock
) -> None:
    moderator = await _user(client, "msg_moderator", moderator=True)
    owner = await _user(client, "msg_owner_three")
    await _worker(client, owner, "message worker three")
    sent = await _send(
        client, moderator, message="Maintenance tonight", origin="AI Horde Moderators", expiry=1
    )
    assert sent.status_code == 200, sent.text
    broadcast = sent.json()
    assert "worker_id" not in broadcast and broadcast["origin"] == "AI Horde Moderators"
    popped = (await _pop(client, owner, "message worker three"))["messages"]
    assert [m["id"] for m in popped] == [broadcast["id"]]
    # a user's list shows the broadcasts too
    mine = (await client.get(f"{V2}/workers/messages", headers={"apikey": owner})).json()
    assert [m["id"] for m in mine] == [broadcast["id"]]
    clock.advance(3601)  # past its expiry: no pop carries it, it lists as expired
    assert (await _pop(client, owner, "message worker three"))["messages"] == []
    headers = {"apikey": moderator}
    active = await client.get(f"{V2}/workers/messages", headers=headers)
    assert active.json() == []
    expired = await client.get(f"{V2}/workers/messages", params={"validity": "expired"}, headers=headers)
    assert [m["id"] for m in expired.json()] == [broadcast["id"]]
    assert (await client.get(f"{V2}/workers/messages/{broadcast['id']}")).status_code == 200
    assert await prune_expired_messages(horde) == 0  # kept a while after expiry
    clock.advance(31 * 86400)
    assert await prune_expired_messages(horde) == 1
    assert await _count(horde) == 0
