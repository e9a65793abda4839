"""Webhook retries on the test's clock against a real HTTP receiver: a retry only when due, a
delivery given up after the last try, and the prune of ended deliveries after the retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from horde.server.webhooks import service as webhooks
from horde.server.webhooks.scheduled import prune_webhooks


class Receiver:
    """Answers 500 to the first `failures` POSTs, 200 afterwards; counts the hits."""

    def __init__(self) -> None:
        self.failures = 0
        self.hits = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next((int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length")), 0)
        await reader.readexactly(length)
        self.hits += 1
        status = b"500 Internal Server Error" if self.hits <= self.failures else b"200 OK"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhook_tries": 3, "webhook_retry_delay": 30.0, "webhook_timeout": 5.0}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    state = Receiver()
    server = await asyncio.start_server(state.serve, "127.0.0.1", 0)
    try:
        yield state, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        server.close()


async def _delivery(horde: Horde) -> dict[str, Any]:
    async with horde.db.autocommit() as conn:
        row = (await conn.execute(select(webhooks.deliveries))).one()
    return dict(row._mapping)


async def _enqueue(horde: Horde, url: str) -> None:
    async with horde.db.transaction() as conn:
        await webhooks.enqueue(conn, url=url, body={"id": "job"}, now=horde.clock.now())


async def test_a_failed_webhook_is_retried_when_due_and_then_delivered(
    horde: Horde, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.failures = 2
    await _enqueue(horde, url)
    assert await webhooks.deliver_due(horde) == 0
    assert state.hits == 1 and (await _delivery(horde))["last_error"] == "HTTP 500"
    clock.advance(29)
    assert await webhooks.deliver_due(horde) == 0 and state.hits == 1  # not due yet
    clock.advance(1)
    assert await webhooks.deliver_due(horde) == 0 and state.hits == 2
    clock.advance(30)
    assert await webhooks.deliver_due(horde) == 1 and state.hits == 3
    row = await _delivery(horde)
    assert row["attempts"] == 3 and row["delivered_at"] is not None and not row["failed"]
    clock.advance(3600)
    assert await webhooks.deliver_due(horde) == 0 and state.hits == 3  # delivered once, never again


async def test_a_webhook_is_given_up_after_the_last_try_and_pruned_later(
    horde: Horde, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.failures = 1000
    await _enqueue(horde, url)
    for _ in range(3):
        await webhooks.deliver_due(horde)
        clock.advance(30)
    row = await _delivery(horde)
    assert state.hits == 3 and row["failed"] and row["attempts"] == 3 and row["delivered_at"] is None
    clock.advance(3600)
    assert await webhooks.deliver_due(horde) == 0 and state.hits == 3  # given up: no fourth try
    assert await prune_webhooks(horde) == 0  # ended, but within the retention
    clock.advance(horde.settings.result_retention)
    assert await prune_webhooks(horde) == 1
    async with horde.db.autocommit() as conn:
        assert (await conn.execute(select(webhooks.deliveries))).all() == []


async def test_prune_keeps_deliveries_still_pending(
    horde: Horde, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.failures = 1000
    await _enqueue(horde, url)
    await webhooks.deliver_due(horde)  # one try failed, two left
    clock.advance(horde.settings.result_retention + 3600)
    assert await prune_webhooks(horde) == 0
    assert (await _delivery(horde))["attempts"] == 1
