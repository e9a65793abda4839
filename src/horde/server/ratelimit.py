"""Fixed-window rate limits per client IP (and per API key on generate), as the reference sets them.

The rules are data (SEMANTICS.md 3.8). Counters live in Redis when it is configured, so every API
node shares them, else in this process. `HORDE_TEST_RATELIMIT_DISABLED=1` turns them off for test
stacks and benchmarks. Applied at the boundary, as ASGI middleware.

Not the `limits` library (STYLE's default), on measurement (`bench/ratelimit_storage.py`): its memory
storage costs 8-13 us of CPU per hit against 1.2-1.5 us here (about 2.5 % of an empty pop, a path
within 5 % of its target), its windows run on its own `time.time()` rather than the horde's clock
(so tests could not drive them), and its Redis storage saves nothing measurable at many keys.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from starlette.types import ASGIApp, Receive, Scope, Send

from horde.server.clientip import client_ip
from horde.server.redis import REDIS_ERRORS, RedisHealth

ANON_KEY = "0000000000"


@dataclass(frozen=True)
class Rule:
    method: str
    path: re.Pattern[str]
    limits: tuple[tuple[int, int], ...]  # (requests, seconds)
    per_path: bool = True  # count per IP + full path (per request id), else per IP
    per_key: int = 0  # requests per second per API key (0: none)


def _rule(
    method: str, pattern: str, *limits: tuple[int, int], per_path: bool = True, per_key: int = 0
) -> Rule:
    return Rule(method, re.compile(f"^/api/v2/{pattern}$"), limits, per_path, per_key)


RULES = (
    _rule("POST", r"generate/(text/)?async", (90, 60), (2, 1), per_key=2),
    _rule("POST", r"interrogate/async", (90, 60), (2, 1), per_key=2),
    _rule("GET", r"generate/status/[^/]+", (10, 60)),
    _rule("GET", r"generate/check/[^/]+", (10, 1)),
    _rule("GET", r"generate/text/status/[^/]+", (60, 60)),
    _rule("GET", r"interrogate/status/[^/]+", (10, 1)),
    _rule("POST", r"(generate|generate/text|interrogate)/(pop|submit)", (60, 1)),
    _rule("POST", r"generate/rate/[^/]+", (5, 60)),
    _rule("PUT", r"workers/[^/]+", (30, 60)),
    _rule("GET", r"users", (90, 60)),
    _rule("GET", r"users/[^/]+", (60, 60)),
    _rule("PUT", r"users/[^/]+", (60, 60)),
    # outside the API: account creation once per IP and hour; signed object URLs as pop and submit
    Rule("POST", re.compile(r"^/register$"), ((1, 3600),), per_path=False),
    Rule("GET", re.compile(r"^/objects/[^/]+$"), ((60, 1),), per_path=False),
    Rule("PUT", re.compile(r"^/objects/[^/]+$"), ((60, 1),), per_path=False),
)
DEFAULT = Rule("*", re.compile(r"^/"), ((90, 60),), per_path=False)
EXEMPT = re.compile(r"^/api/v2/(status/heartbeat|dev/test-user)$")


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of a route: every route has one except the heartbeat and the test-user route."""
    if EXEMPT.match(path):
        return None
    for rule in RULES:
        if rule.method == method and rule.path.match(path):
            return rule
    return DEFAULT


class Counters(Protocol):
    async def hit(self, key: str, seconds: int) -> int: ...


Now = Callable[[], float]


class MemoryCounters:
    """Per-process counters (one API node), forgotten when their window has passed. Windows are
    aligned to multiples of their length (as the Redis counters' are), on the clock `now`."""

    def __init__(self, maxsize: int = 200_000, *, now: Now = time.time) -> None:
        self._windows: dict[tuple[str, int], tuple[float, int]] = {}  # (key, seconds) -> (ends, count)
        self._maxsize = maxsize
        self._next_prune = 0.0
        self.now = now

    async def hit(self, key: str, seconds: int) -> int:
        now = self.now()
        if len(self._windows) > self._maxsize and now >= self._next_prune:
            self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
            self._next_prune = now + 1.0  # at most one sweep a second, whatever the traffic
        slot = (key, seconds)
        ends, count = self._windows.get(slot, (0.0, 0))
        if ends <= now:
            ends, count = (now // seconds + 1) * seconds, 0
        self._windows[slot] = (ends, count + 1)
        return count + 1


class RedisCounters:
    """Counters shared by every API node; while Redis does not answer, this node's own counters
    (a node then allows what one node would), and Redis again after a back-off (`RedisHealth`)."""

    def __init__(
        self, client: aioredis.Redis, prefix: str, *, now: Now = time.time, health: RedisHealth | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.now = now
        self.health = health or RedisHealth()
        self.fallback = MemoryCounters(now=now)

    async def hit(self, key: str, seconds: int) -> int:
        if not self.health.may_try():
            return await self.fallback.hit(key, seconds)
        window = int(self.now() // seconds)
        name = f"{self.prefix}rl:{key}:{seconds}:{window}"
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.incr(name)
                pipe.expire(name, seconds + 1)
                count, _ = await pipe.execute()
        except REDIS_ERRORS as exc:
            self.health.failed(exc)
            return await self.fallback.hit(key, seconds)
        self.health.succeeded()
        return int(count)


def _api_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"apikey":
            return bytes(value).decode("latin-1")
    return None


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, counters: Counters) -> None:
        self.app = app
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (rule := rule_for(scope["method"], scope["path"])):
            message = await self._check(rule, scope)
            if message is not None:
                await _refuse(send, message)
                return
        await self.app(scope, receive, send)

    async def _check(self, rule: Rule, scope: Scope) -> str | None:
        ip = client_ip(scope) or "unknown"
        subject = f"{ip}:{scope['path']}" if rule.per_path else ip
        for count, seconds in rule.limits:
            if await self.counters.hit(subject, seconds) > count:
                return f"{count} per {seconds} second(s)"
        key = _api_key(scope)
        if rule.per_key and key:
            per_second = 60 if key == ANON_KEY else rule.per_key
            digest = hashlib.sha256(key.encode()).hexdigest()[:24]
            if await self.counters.hit(f"key:{digest}:{scope['path']}", 1) > per_second:
                return f"{per_second} per 1 second(s) for this API key"
        return None


async def _refuse(send: Send, limit: str) -> None:
    body = json.dumps({"message": f"Rate limit exceeded: {limit}", "rc": "TooManyRequests"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
