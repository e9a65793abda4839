"""Rate limits as the reference sets them, counted in this process or in Redis (shared by nodes).

The clock is the test's: each limit is checked exactly (its last allowed call passes, the next is
refused) and at the edge of its window (refused just before the end, allowed at the end).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import redis.asyncio as aioredis

from horde.server.app import create_app
from horde.server.kit.clock import FakeClock
from horde.server.ratelimit import MemoryCounters, RedisCounters, rule_for
from horde.server.state import Horde
from tests.helpers import V2, new_user

ANON = "0000000000"
Client = Callable[[str], httpx.AsyncClient]


def test_rules() -> None:
    assert rule_for("GET", "/api/v2/status/heartbeat") is None
    assert rule_for("POST", "/api/v2/dev/test-user") is None
    check = rule_for("GET", "/api/v2/generate/check/abc")
    assert check is not None and check.limits == ((10, 1),)
    default = rule_for("GET", "/api/v2/status/models")
    assert default is not None and default.limits == ((90, 60),) and not default.per_path
    for method, path in [
        ("POST", "/register"),
        ("GET", "/register"),
        ("PUT", "/objects/x.webp"),
        ("GET", "/api/"),
    ]:
        assert rule_for(method, path) is not None, path  # every route has a limit
    register = rule_for("POST", "/register")
    assert register is not None and register.limits == ((1, 3600),)


@pytest.fixture(params=["memory", "redis"])
async def clients(request: pytest.FixtureRequest, horde: Horde, redis_url: str) -> AsyncIterator[Client]:
    """A client per IP address, all through one app whose limits are on."""
    horde.settings.test_ratelimit_disabled = False
    if request.param == "redis":
        horde.settings.redis_url = redis_url
        # a loaded test machine can stall a Redis answer past the default second: the node would then
        # count alone for a while, which is right in production and a false failure here
        horde.settings.redis_timeout = 30.0
        horde.settings.redis_prefix = f"rl-test-{uuid.uuid4().hex}:"
    app = create_app(horde.settings, horde=horde)
    opened: list[httpx.AsyncClient] = []

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 1), raise_app_exceptions=False)
        opened.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        return opened[-1]

    yield client
    for each in opened:
        await each.aclose()


def _window_start(clock: FakeClock, seconds: int) -> None:
    clock.advance(seconds - clock.now() % seconds)


LIMITS = [
    ("GET", f"{V2}/generate/status/one", 10, 60),
    ("GET", f"{V2}/generate/check/one", 10, 1),
    ("GET", f"{V2}/generate/text/status/one", 60, 60),
    ("GET", f"{V2}/interrogate/status/one", 10, 1),
    ("POST", f"{V2}/generate/text/pop", 60, 1),
    ("PUT", f"{V2}/workers/one", 30, 60),
    ("GET", f"{V2}/users", 90, 60),
    ("GET", f"{V2}/users/1", 60, 60),
    ("GET", f"{V2}/status/models", 90, 60),
    ("POST", f"{V2}/teams", 30, 60),
    ("PATCH", f"{V2}/teams/one", 30, 60),
    ("PUT", f"{V2}/status/modes", 30, 60),
    ("PUT", f"{V2}/sharedkeys", 5, 60),
    ("PATCH", f"{V2}/styles/image/one", 20, 3600),
    ("POST", "/register", 1, 3600),
]


@pytest.mark.parametrize(("method", "path", "limit", "seconds"), LIMITS)
async def test_exact_limit_and_window_end(
    clients: Client, clock: FakeClock, method: str, path: str, limit: int, seconds: int
) -> None:
    client = clients("10.1.2.3")
    _window_start(clock, seconds)
    window_end = clock.now() + seconds
    answers = [await client.request(method, path) for _ in range(limit)]
    assert 429 not in [answer.status_code for answer in answers]
    for sent, answer in enumerate(answers, start=1):  # flask-limiter's headers, on every answer
        assert answer.headers["x-ratelimit-limit"] == str(limit)
        assert answer.headers["x-ratelimit-remaining"] == str(limit - sent)
        assert answer.headers["x-ratelimit-reset"] == str(int(window_end))
        assert "retry-after" not in answer.headers
    clock.advance(seconds - 0.001)
    refused = await client.request(method, path)
    assert refused.status_code == 429
    assert refused.json() == {
        "message": f"Rate limit exceeded: {limit} per {seconds} second(s)",
        "rc": "TooManyRequests",
    }
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["retry-after"] == "1"  # the window ends in a millisecond
    assert (await clients("10.1.2.4").request(method, path)).status_code != 429  # another IP
    clock.advance(0.001)
    assert (await client.request(method, path)).status_code != 429  # a new window


async def test_generate_limits(clients: Client, clock: FakeClock, api_key: str) -> None:
    _window_start(clock, 60)
    one = clients("10.1.2.5")
    body = {"prompt": "hi", "params": {"max_length": 16}, "dry_run": True}
    path = f"{V2}/generate/text/async"
    assert [(await one.post(path, json=body, headers={"apikey": api_key})).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]  # fmt: skip  -- 2 a second per IP
    # 2 a second per key, whatever the IP; the anonymous key is shared: 60
    other = await clients("10.1.2.6").post(path, json=body, headers={"apikey": api_key})
    assert other.status_code == 429 and "for this API key" in other.json()["message"]
    clock.advance(1)
    for i in range(30):  # 90 a minute per IP: the per-second limit never bites at 2 a second
        ip_client = clients(f"10.2.{i}.1")
        assert (await ip_client.post(path, json=body, headers={"apikey": ANON})).status_code == 200
        assert (await ip_client.post(path, json=body, headers={"apikey": ANON})).status_code == 200
    refused = await clients("10.2.30.1").post(path, json=body, headers={"apikey": ANON})
    assert refused.status_code == 429 and "60 per 1 second(s) for this API key" in refused.json()["message"]


async def test_transfers_are_limited_per_key(clients: Client, clock: FakeClock, api_key: str) -> None:
    _window_start(clock, 3600)
    path, body = f"{V2}/kudos/transfer", {"username": "nobody#99999", "amount": 1}
    first = await clients("10.1.3.1").post(path, json=body, headers={"apikey": api_key})
    assert first.status_code != 429 and first.headers["x-ratelimit-limit"] == "1"
    refused = await clients("10.1.3.2").post(path, json=body, headers={"apikey": api_key})  # any IP
    assert refused.status_code == 429
    assert refused.json()["message"] == "Rate limit exceeded: 1 per 1 second(s) for this API key"
    for _ in range(89):  # one a second: the hourly limit is the next to bite
        clock.advance(1)
        again = await clients("10.1.3.1").post(path, json=body, headers={"apikey": api_key})
        assert again.status_code != 429
    clock.advance(1)
    hourly = await clients("10.1.3.3").post(path, json=body, headers={"apikey": api_key})
    assert hourly.status_code == 429
    assert hourly.json()["message"] == "Rate limit exceeded: 90 per 3600 second(s) for this API key"
    other_key = await clients("10.1.3.3").post(path, json=body, headers={"apikey": "another-key-1"})
    assert other_key.status_code != 429


async def test_a_trusted_users_ip_is_whitelisted_for_a_day(
    clients: Client, client: httpx.AsyncClient, clock: FakeClock, api_key: str
) -> None:
    _window_start(clock, 60)
    path = f"{V2}/generate/text/async"
    dry = {"prompt": "hi", "params": {"max_length": 16}, "dry_run": True}
    plain = await new_user(client, "plain_limited")
    # a plain user's queued request whitelists nothing: 2 a second from that IP
    queued = await clients("10.4.0.1").post(path, json={**dry, "dry_run": False}, headers={"apikey": plain})
    assert queued.status_code == 202, queued.text
    assert (await clients("10.4.0.1").post(path, json=dry, headers={"apikey": ANON})).status_code == 200
    assert (await clients("10.4.0.1").post(path, json=dry, headers={"apikey": ANON})).status_code == 429
    clock.advance(1)
    # a trusted user's queued request (a dry run is not one) gives its IP 300 a minute and 10 a second
    trusted = clients("10.4.0.2")
    assert (await trusted.post(path, json=dry, headers={"apikey": api_key})).status_code == 200
    queued = await trusted.post(path, json={**dry, "dry_run": False}, headers={"apikey": api_key})
    assert queued.status_code == 202, queued.text
    clock.advance(1)
    answers = [(await trusted.post(path, json=dry, headers={"apikey": ANON})).status_code for _ in range(11)]
    assert answers == [200] * 10 + [429]
    assert (await trusted.post(path, json=dry, headers={"apikey": ANON})).json()["message"] == (
        "Rate limit exceeded: 10 per 1 second(s)"
    )
    clock.advance(86_400)  # a day later the IP has the plain limits again
    answers = [(await trusted.post(path, json=dry, headers={"apikey": ANON})).status_code for _ in range(3)]
    assert answers == [200, 200, 429]


async def test_status_counts_per_request_id(clients: Client, clock: FakeClock) -> None:
    client = clients("10.1.2.7")
    _window_start(clock, 60)
    for _ in range(10):
        assert (await client.get(f"{V2}/generate/status/one")).status_code == 404
    assert (await client.get(f"{V2}/generate/status/one")).status_code == 429
    assert (await client.get(f"{V2}/generate/status/two")).status_code == 404  # another counter


async def test_heartbeat_is_exempt(clients: Client) -> None:
    client = clients("10.1.2.8")
    for _ in range(100):
        assert (await client.get(f"{V2}/status/heartbeat")).status_code == 200


async def test_memory_counters_window() -> None:
    clock = FakeClock(start=600.0)
    counters = MemoryCounters(now=clock.now)
    assert [await counters.hit("k", 60) for _ in range(3)] == [1, 2, 3]
    clock.advance(59.9)
    assert await counters.hit("k", 60) == 4
    clock.advance(0.1)
    assert await counters.hit("k", 60) == 1


async def test_redis_counters_are_shared(redis_url: str) -> None:
    a, b = aioredis.from_url(redis_url), aioredis.from_url(redis_url)
    prefix = f"shared-test-{uuid.uuid4().hex}:"
    try:
        first, second = RedisCounters(a, prefix), RedisCounters(b, prefix)
        assert await first.hit("ip", 60) == 1
        assert await second.hit("ip", 60) == 2  # another node sees the same count
    finally:
        await a.aclose()
        await b.aclose()
