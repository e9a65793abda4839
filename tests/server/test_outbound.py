"""Outbound calls (webhooks, source fetches) against real HTTP servers: one deadline for the whole
call, and a receiver that trickles its answer a byte at a time delays nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from horde.server.errors import HordeError
from horde.server.images.sources import SourcePolicy, fetch_url
from horde.server.state import Horde
from horde.server.webhooks import service as webhooks

GUARD = 30.0  # a test that waits this long has failed (the trickle would run for minutes)


class Servers:
    """A trickling HTTP server and a prompt one, on loopback ports of their own."""

    def __init__(self) -> None:
        self.prompt_hits = asyncio.Event()
        self.trickling: list[asyncio.StreamWriter] = []

    async def trickle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.trickling.append(writer)
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
        try:
            for i in range(len(answer)):  # one byte every 0.2 s: each read is quick, the whole is not
                writer.write(answer[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0.2)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def prompt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.prompt_hits.set()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Servers, str, str]]:
    state = Servers()
    slow = await asyncio.start_server(state.trickle, "127.0.0.1", 0)
    fast = await asyncio.start_server(state.prompt, "127.0.0.1", 0)
    slow_port = slow.sockets[0].getsockname()[1]
    fast_port = fast.sockets[0].getsockname()[1]
    try:
        yield state, f"http://127.0.0.1:{slow_port}/hook", f"http://127.0.0.1:{fast_port}/hook"
    finally:
        for writer in state.trickling:
            writer.close()
        slow.close()
        fast.close()


async def test_source_fetch_has_one_deadline(servers: tuple[Servers, str, str]) -> None:
    _, slow, _ = servers
    policy = SourcePolicy(allow_private=True, timeout=1.0, max_bytes=5 * 1024 * 1024)
    async with httpx.AsyncClient() as client:
        with pytest.raises(HordeError) as refused:
            await asyncio.wait_for(fetch_url(client, slow, policy), GUARD)
    assert refused.value.rc == "SourceImageUnreadable"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhook_timeout": 1.0, "webhook_tries": 1}


async def test_a_trickling_webhook_delays_no_other(horde: Horde, servers: tuple[Servers, str, str]) -> None:
    state, slow, fast = servers
    async with horde.db.transaction() as conn:
        await webhooks.enqueue(conn, url=slow, body={"id": "slow"}, now=horde.clock.now())  # first in line
        await webhooks.enqueue(conn, url=fast, body={"id": "fast"}, now=horde.clock.now())
    round_ = asyncio.create_task(webhooks.deliver_due(horde))
    await asyncio.wait_for(state.prompt_hits.wait(), GUARD)  # while the slow one still trickles
    assert not round_.done()
    assert await asyncio.wait_for(round_, GUARD) == 1
    async with horde.db.autocommit() as conn:
        rows = (await conn.execute(select(webhooks.deliveries).order_by(webhooks.deliveries.c.id))).all()
    slow_row, fast_row = (dict(row._mapping) for row in rows)
    assert fast_row["delivered_at"] is not None and fast_row["last_error"] is None
    assert slow_row["delivered_at"] is None and slow_row["failed"] is True
    assert slow_row["last_error"] == "no answer within 1 s"
