"""Fixed-window rate limits per client IP (and per API key on generate and transfers), as the reference
sets them, with its X-RateLimit-* headers and its dynamic whitelist of trusted users' IPs.

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
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from horde.server.clientip import client_ip
from horde.server.redis import REDIS_ERRORS, RedisHealth

ANON_KEY = "0000000000"


Limits = tuple[tuple[int, int], ...]  # (requests, seconds) each


@dataclass(frozen=True)
class Rule:
    method: str
    path: re.Pattern[str]
    limits: Limits  # per client IP (and path)
    per_path: bool = True  # count per IP + full path (per request id), else per IP
    key_limits: Limits = ()  # per API key (and path); by IP when the request has no key
    # the per-IP limits of an IP a trusted, education or service user generated from within a day
    # (the reference's dynamic whitelist); such an IP, like the anonymous key, gets 60 a second per key
    whitelisted: Limits | None = None


def _rule(method: str, pattern: str, *limits: tuple[int, int], **options: Any) -> Rule:
    return Rule(method, re.compile(f"^/api/v2/{pattern}$"), limits, **options)


_GENERATE = {"key_limits": ((2, 1),), "whitelisted": ((300, 60), (10, 1))}
RULES = (
    _rule("POST", r"generate/(text/)?async", (90, 60), (2, 1), **_GENERATE),
    _rule("POST", r"interrogate/async", (90, 60), (2, 1), **_GENERATE),
    _rule("POST", r"(styles/(image|text)|collections)", (90, 60), (2, 1), **_GENERATE),
    _rule("GET", r"generate/status/[^/]+", (10, 60)),
    _rule("GET", r"generate/check/[^/]+", (10, 1)),
    _rule("GET", r"generate/text/status/[^/]+", (60, 60)),
    _rule("GET", r"interrogate/status/[^/]+", (10, 1)),
    _rule("POST", r"(generate|generate/text|interrogate)/(pop|submit)", (60, 1)),
    _rule("POST", r"generate/rate/[^/]+", (5, 60)),
    _rule("POST", r"kudos/transfer", key_limits=((1, 1), (90, 3600))),
    _rule("PUT", r"workers/[^/]+", (30, 60)),
    _rule("GET", r"users", (90, 60)),
    _rule("GET", r"users/[^/]+", (60, 60)),
    _rule("PUT", r"users/[^/]+", (60, 60)),
    _rule("POST", r"teams", (30, 60)),
    _rule("PATCH", r"teams/[^/]+", (30, 60)),
    _rule("PUT", r"status/modes", (30, 60)),
    _rule("PUT", r"sharedkeys", (5, 60)),
    _rule("PATCH", r"styles/(image|text)/[^/]+", (20, 3600)),
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

    async def mark(self, key: str, seconds: int) -> None: ...

    async def marked(self, key: str) -> bool: ...


Now = Callable[[], float]


class MemoryCounters:
    """Per-process counters (one API node), forgotten when their window has passed. Windows are
    aligned to multiples of their length (as the Redis counters' are), on the clock `now`."""

    def __init__(self, maxsize: int = 200_000, *, now: Now = time.time) -> None:
        self._windows: dict[tuple[str, int], tuple[float, int]] = {}  # (key, seconds) -> (ends, count)
        self._marks: dict[str, float] = {}  # key -> until
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

    async def mark(self, key: str, seconds: int) -> None:
        self._marks[key] = self.now() + seconds
        if len(self._marks) > self._maxsize:
            now = self.now()
            self._marks = {k: until for k, until in self._marks.items() if until > now}

    async def marked(self, key: str) -> bool:
        return self._marks.get(key, 0.0) > self.now()


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

    async def mark(self, key: str, seconds: int) -> None:
        await self.fallback.mark(key, seconds)  # this node knows at once, and while Redis is down
        if self.health.may_try():
            try:
                until = str(self.now() + seconds)  # on the horde's clock, as the windows are
                await self.client.set(f"{self.prefix}rl:mark:{key}", until, ex=seconds)
            except REDIS_ERRORS as exc:
                self.health.failed(exc)
            else:
                self.health.succeeded()

    async def marked(self, key: str) -> bool:
        if await self.fallback.marked(key):
            return True
        if not self.health.may_try():
            return False
        try:
            until = await self.client.get(f"{self.prefix}rl:mark:{key}")
        except REDIS_ERRORS as exc:
            self.health.failed(exc)
            return False
        self.health.succeeded()
        return until is not None and float(until) > self.now()


def _api_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"apikey":
            return bytes(value).decode("latin-1")
    return None


WHITELIST_SECONDS = 86_400


@dataclass
class Verdict:
    """The tightest limit a request met: its figures for the X-RateLimit headers, and whether it is over."""

    limit: int
    remaining: int
    reset: float  # when its window ends (epoch seconds)
    refused: str | None = None  # the message when over

    def headers(self, now: float) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(max(self.remaining, 0)).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset)).encode()),
        ]
        if self.refused is not None:
            headers.append((b"retry-after", str(max(math.ceil(self.reset - now), 1)).encode()))
        return headers


class RateLimiter:
    """The rules applied to requests, on shared or local counters, and the dynamic whitelist."""

    def __init__(self, counters: Counters, *, now: Now = time.time) -> None:
        self.counters = counters
        self.now = now

    async def whitelist(self, ip: str) -> None:
        """Give `ip` the whitelisted limits for a day (after a trusted, education or service user's
        generate from it, SEMANTICS.md 3.8)."""
        await self.counters.mark(f"wl:{ip}", WHITELIST_SECONDS)

    async def check(self, rule: Rule, scope: Scope) -> Verdict | None:
        ip = client_ip(scope) or "unknown"
        limits = rule.limits
        whitelisted = rule.whitelisted is not None and await self.counters.marked(f"wl:{ip}")
        if whitelisted and rule.whitelisted is not None:
            limits = rule.whitelisted
        subject = f"{ip}:{scope['path']}" if rule.per_path else ip
        verdict: Verdict | None = None
        for count, seconds in limits:
            verdict = self._tightest(verdict, count, seconds, await self.counters.hit(subject, seconds))
            if verdict.refused:
                return verdict
        if rule.key_limits:
            key = _api_key(scope)
            anyone = key in (None, ANON_KEY) or whitelisted
            digest = hashlib.sha256(key.encode()).hexdigest()[:24] if key else f"ip:{ip}"
            for count, seconds in rule.key_limits:
                count = 60 if anyone and seconds == 1 else count
                hits = await self.counters.hit(f"key:{digest}:{scope['path']}", seconds)
                verdict = self._tightest(verdict, count, seconds, hits, for_key=True)
                if verdict.refused:
                    return verdict
        return verdict

    def _tightest(
        self, best: Verdict | None, count: int, seconds: int, hits: int, *, for_key: bool = False
    ) -> Verdict:
        reset = (self.now() // seconds + 1) * seconds
        this = Verdict(count, count - hits, reset)
        if hits > count:
            this.refused = f"{count} per {seconds} second(s)" + (" for this API key" if for_key else "")
            return this
        if best is None or this.remaining < best.remaining:
            return this
        return best


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (rule := rule_for(scope["method"], scope["path"])):
            await self.app(scope, receive, send)
            return
        verdict = await self.limiter.check(rule, scope)
        if verdict is None:
            await self.app(scope, receive, send)
            return
        headers = verdict.headers(self.limiter.now())
        if verdict.refused is not None:
            await _refuse(send, verdict.refused, headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send: Send, limit: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"message": f"Rate limit exceeded: {limit}", "rc": "TooManyRequests"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
