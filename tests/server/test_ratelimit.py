"""Rate limits as the reference sets them, counted in this process or in Redis (shared by nodes)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from horde.server.app import create_app
from horde.server.ratelimit import MemoryCounters, RedisCounters, rule_for
from horde.server.state import Horde
from tests.helpers import V2


def test_rules() -> None:
    assert rule_for("GET", "/api/v2/status/heartbeat") is None
    assert rule_for("GET", "/objects/x.webp") is None
    check = rule_for("GET", "/api/v2/generate/check/abc")
    assert check is not None and check.limits == ((10, 1),)
    default = rule_for("GET", "/api/v2/status/models")
    assert default is not None and default.limits == ((90, 60),) and not default.per_path


@pytest.fixture(params=["memory", "redis"])
async def limited(
    request: pytest.FixtureRequest, horde: Horde, redis_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    horde.settings.test_ratelimit_disabled = False
    if request.param == "redis":
        horde.settings.redis_url = redis_url
        horde.settings.redis_prefix = f"rl-test-{id(horde)}:"
    app = create_app(horde.settings, horde=horde)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 1), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_status_is_limited_per_request_id(limited: httpx.AsyncClient) -> None:
    # 10 per minute per IP and request id: 25 calls exceed it even if they straddle a window's edge
    answers = [await limited.get(f"{V2}/generate/status/one") for _ in range(25)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused
    assert refused[0].json()["rc"] == "TooManyRequests"
    other = await limited.get(f"{V2}/generate/status/two")
    assert other.status_code == 404  # another request id is another counter (and it does not exist)


async def test_heartbeat_is_exempt(limited: httpx.AsyncClient) -> None:
    for _ in range(100):
        assert (await limited.get(f"{V2}/status/heartbeat")).status_code == 200


async def test_memory_counters_window() -> None:
    counters = MemoryCounters()
    assert [await counters.hit("k", 60) for _ in range(3)] == [1, 2, 3]


async def test_redis_counters_are_shared(redis_url: str) -> None:
    a, b = aioredis.from_url(redis_url), aioredis.from_url(redis_url)
    try:
        first, second = RedisCounters(a, "shared-test:"), RedisCounters(b, "shared-test:")
        assert await first.hit("ip", 60) == 1
        assert await second.hit("ip", 60) == 2  # another node sees the same count
    finally:
        await a.aclose()
        await b.aclose()
