"""Redis down does not take the API down: a private `redis-server` of this test, stopped and started.

Rate limits fall back to this node's counters, the heartbeat says DEGRADED, wake-ups between nodes
resume when Redis is back (the relay reconnects with back-off). Never the shared Redis: this one runs
on a free port of its own and is stopped by its pid.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from horde.server.app import create_app
from horde.server.kit.notify import Notifier
from horde.server.redis import RedisHealth, connect_relay
from horde.server.state import Horde
from tests import needs
from tests.helpers import V2

GUARD = 20.0


class PrivateRedis:
    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            str(shutil.which("redis-server")), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.data_dir),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    needs.program("redis-server", install="apt-get install redis-server")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def limited(horde: Horde, private_redis: PrivateRedis) -> AsyncIterator[httpx.AsyncClient]:
    horde.settings.test_ratelimit_disabled = False
    horde.settings.redis_url = private_redis.url
    app = create_app(horde.settings, horde=horde)
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 1), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _until(predicate: object, what: str) -> None:
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {GUARD} s: {what}")


async def test_api_serves_without_redis(
    limited: httpx.AsyncClient, horde: Horde, private_redis: PrivateRedis
) -> None:
    assert (await limited.get(f"{V2}/generate/status/one")).status_code == 404
    beat = (await limited.get(f"{V2}/status/heartbeat")).json()
    assert beat["message"] == "OK" and beat["redis_connection"] is True
    private_redis.stop()
    # image status: 10 a minute per IP and request id, now counted in this process
    answers = [(await limited.get(f"{V2}/generate/status/two")).status_code for _ in range(11)]
    assert answers == [404] * 10 + [429]
    beat = (await limited.get(f"{V2}/status/heartbeat")).json()
    assert beat["message"] == "DEGRADED" and beat["redis_connection"] is False
    private_redis.start()

    async def recovered() -> bool:
        await limited.get(f"{V2}/generate/status/three")
        return bool((await limited.get(f"{V2}/status/heartbeat")).json()["message"] == "OK")

    await _until(recovered, "the counters use Redis again")
    client = aioredis.from_url(private_redis.url)
    try:
        assert await client.keys("*rl:10.9.8.7:/api/v2/generate/status/three*")
    finally:
        await client.aclose()


async def test_relay_reconnects(private_redis: PrivateRedis) -> None:
    health_a, health_b = (
        RedisHealth(first_delay=0.1, max_delay=0.5),
        RedisHealth(first_delay=0.1, max_delay=0.5),
    )
    a, b = Notifier(), Notifier()
    relay_a = await connect_relay(private_redis.url, prefix="relay-test:", notifier=a, health=health_a)
    relay_b = await connect_relay(private_redis.url, prefix="relay-test:", notifier=b, health=health_b)
    try:

        async def heard() -> bool:
            before = b.work_version("text")
            a.work_added("text")
            await asyncio.sleep(0.1)
            return b.work_version("text") > before

        await _until(heard, "a wake-up crosses nodes")
        private_redis.stop()

        async def noticed() -> bool:
            a.work_added("text")
            return not health_b.healthy

        await _until(noticed, "the listener notices Redis is gone")
        private_redis.start()
        await _until(heard, "a wake-up crosses nodes after Redis came back")
        assert health_a.healthy and health_b.healthy
    finally:
        await relay_a.stop()
        await relay_b.stop()
