"""The queue snapshot: what status and the async answer say about who could serve a request."""

from __future__ import annotations

import httpx
import pytest

from horde.server.app import build_horde, close_horde, create_app
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests.helpers import V2


async def _pop(client: httpx.AsyncClient, key: str) -> dict[str, object]:
    answer = await client.post(
        f"{V2}/generate/text/pop", json={"name": "trusted worker"}, headers={"apikey": key}
    )
    result: dict[str, object] = answer.json()
    return result


async def test_a_trusted_worker_online_makes_trusted_requests_possible(
    client: httpx.AsyncClient, api_key: str, clock: FakeClock
) -> None:
    await _pop(client, api_key)  # the worker (its owner is trusted) checks in
    accepted = await client.post(
        f"{V2}/generate/text/async",
        json={"prompt": "hi", "trusted_workers": True},
        headers={"apikey": api_key},
    )
    assert accepted.status_code == 202
    assert "warnings" not in accepted.json()
    clock.advance(2)  # the next status takes a fresh snapshot, which holds the new request
    status = (await client.get(f"{V2}/generate/text/status/{accepted.json()['id']}")).json()
    assert status["is_possible"] is True
    assert status["queue_position"] == 1


async def test_an_untrusted_worker_cannot_serve_trusted_requests(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    plain = (await client.post(f"{V2}/dev/test-user", json={"oauth_id": "plain", "trusted": False,
                                                              "moderator": False})).json()  # fmt: skip
    key = plain["api_key"]
    await _pop(client, key)
    accepted = await client.post(
        f"{V2}/generate/text/async", json={"prompt": "hi", "trusted_workers": True}, headers={"apikey": key}
    )
    assert accepted.json()["warnings"][0]["code"] == "NoAvailableWorker"
    clock.advance(2)
    status = (await client.get(f"{V2}/generate/text/status/{accepted.json()['id']}")).json()
    assert status["is_possible"] is False
    assert (await _pop(client, key))["id"] is None


async def test_an_empty_pop_answered_from_the_snapshot_still_sees_new_work_at_once(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    """Empty pops skip the claim while the snapshot proves there is nothing; work added on this node
    changes the notifier's version, so the very next pop claims (the clock does not move here)."""
    await _pop(client, api_key)
    assert (await _pop(client, api_key))["id"] is None  # answered from the snapshot
    body = {"prompt": "hi"}
    accepted = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    assert accepted.status_code == 202
    assert (await _pop(client, api_key))["id"] is not None


@pytest.mark.committed  # the other node reads on connections of its own
async def test_work_queued_on_another_node_without_a_relay_is_seen_within_the_snapshot_age(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    if horde.db.is_sqlite:
        pytest.skip("one server process per SQLite file: there is no other node")
    other = await build_horde(horde.settings, clock=clock, migrate=False, catalog=horde.catalog)
    try:
        app = create_app(other.settings, horde=other)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
        other_client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        async with other_client:
            await _pop(client, api_key)  # this node's snapshot: an empty queue
            queued = await other_client.post(
                f"{V2}/generate/text/async", json={"prompt": "hi"}, headers={"apikey": api_key}
            )
            assert queued.status_code == 202
            assert (await _pop(client, api_key))["id"] is None  # not heard of yet: no relay
            clock.advance(horde.settings.snapshot_max_age)
            assert (await _pop(client, api_key))["id"] is not None
    finally:
        await close_horde(other)
