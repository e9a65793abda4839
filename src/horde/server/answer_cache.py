"""The two-tier answer cache of the hot GET routes (ADR 0026): a node-local tier with a TTL of at most a
second in front of a Redis tier every node shares, keyed by the full path and the sorted query (and,
where the answer depends on the caller, a hash of the `apikey`).

Reads: the local tier, then Redis, then the route itself (one computation per key at a time on a
node: concurrent misses wait for the first). Writes that change a cached object invalidate its tag
(`invalidate`): this node drops its local entries and Redis's hash of the tag, and every other node
drops its local entries when the relay brings it the event. With Redis down (or not configured) the
local tier alone serves, its short TTL the only bound on staleness.

The cache sits inside the field-mask middleware, so it keeps unmasked bodies and `X-Fields` need not
be part of the key; and inside the rate limits, so a cached answer still counts against them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import redis.asyncio as aioredis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from horde.server.observe.metrics import CACHE_HITS, CACHE_MISSES
from horde.server.redis import REDIS_ERRORS, RedisHealth

V2 = "/api/v2"
MAX_BODY = 512 * 1024  # larger answers are not worth a copy in every node's memory and in Redis
HASH_LIFETIME = 60  # a tag's Redis hash outlives its last refresh by this; entries carry their own expiry
HASH_REFRESH = 10  # a node refreshes a hash's lifetime at most this often (one command per fill, not two)
_LOCAL_HIT = CACHE_HITS.labels("local")
_SHARED_HIT = CACHE_HITS.labels("shared")


@dataclass(frozen=True, slots=True)
class CachedRoute:
    """A GET route whose 200 answers are cached. `shared_ttl` 0: the local tier only."""

    pattern: re.Pattern[str]
    tag: str  # what a write invalidates; "request" routes take the request id as their tag
    shared_ttl: float
    per_key: bool  # the answer depends on the caller: the key's hash is part of the cache key


def _route(path: str, tag: str, shared_ttl: float, *, per_key: bool = False) -> CachedRoute:
    return CachedRoute(re.compile(V2 + path + "$"), tag, shared_ttl, per_key)


_UUID = "[0-9a-fA-F-]{32,36}"
ROUTES: tuple[CachedRoute, ...] = (
    # this node's own health (a load balancer asks each node): never another node's answer
    _route("/status/heartbeat", "heartbeat", 0.0),
    _route("/status/models", "status", 2.0),
    _route("/status/models/.+", "status", 2.0),
    _route("/status/performance", "status", 2.0),
    # owners, moderators and admins see more of a worker: per key
    _route("/workers", "workers", 2.0, per_key=True),
    _route(f"/workers/{_UUID}", "workers", 2.0, per_key=True),
    _route("/workers/name/[^/]+", "workers", 2.0, per_key=True),
    # not /find_user nor /users/{id}: they show the caller's balance, which every request and every
    # fold moves, and clients read it right after a charge (the key's own lookup has the node's
    # UserCache); the user list is the leaderboard, invalidated by user changes
    _route("/users", "users", 2.0),
    _route("/teams", "teams", 10.0),
    _route("/teams/[^/]+", "teams", 10.0, per_key=True),
    # a request's status: polled by its one client, so a shared copy would seldom be read by another;
    # invalidated by the request's own change events (kit/notify.py), relayed between nodes
    _route(f"/generate/check/({_UUID})", "request", 0.0),
    _route(f"/generate/status/({_UUID})", "request", 0.0),
    _route(f"/generate/text/status/({_UUID})", "request", 0.0),
    _route(f"/interrogate/status/({_UUID})", "request", 0.0),
)
_PREFILTER = re.compile(V2 + "/(status|workers|users|teams|generate|interrogate)")


@dataclass(slots=True)
class Entry:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    made_at: float  # wall clock of the computation: a copy served later is this much old

    def encode(self, expires: float) -> bytes:
        headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers]
        head = {"h": headers, "m": self.made_at, "e": expires}
        return json.dumps(head, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes, now: float) -> Entry | None:
        head_raw, _, body = raw.partition(b"\n")
        try:
            head = json.loads(head_raw)
            if head["e"] < now:
                return None
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in head["h"]]
            return cls(headers, body, float(head["m"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(slots=True)
class _Local:
    expires: float
    tag: str
    entry: Entry


@dataclass
class AnswerCache:
    """The two tiers. `local_ttl` 0 turns the local tier off (the bench compares the two)."""

    local_ttl: float = 1.0
    maxsize: int = 5_000
    client: aioredis.Redis | None = None
    prefix: str = "horde:"
    health: RedisHealth = field(default_factory=RedisHealth)
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    enabled: bool = True
    _local: OrderedDict[str, _Local] = field(default_factory=OrderedDict)
    _tags: dict[str, set[str]] = field(default_factory=dict)
    _inflight: dict[str, asyncio.Future[Entry | None]] = field(default_factory=dict)
    # drops seen per tag: an answer computed across a drop of its tag may predate the write, so it is
    # served to the callers that waited for it but kept in neither tier
    _generation: dict[str, int] = field(default_factory=dict)
    _inflight_tags: dict[str, int] = field(default_factory=dict)  # computations running, per tag
    _dropping: dict[str, int] = field(default_factory=dict)  # tags whose Redis copies are being dropped
    _refreshed: dict[str, float] = field(default_factory=dict)  # when this node last set a hash's expiry
    _pending: set[asyncio.Task[None]] = field(default_factory=set)
    # called with the tags after this node dropped them (the node's computed answers, `kit/answers.py`)
    on_dropped: list[Callable[[list[str]], None]] = field(default_factory=list)
    # called with the tags when a write here invalidated them: the relay tells the other nodes
    on_invalidated: Callable[[list[str]], None] | None = None

    def __post_init__(self) -> None:
        self.watch(self.health)

    def watch(self, health: RedisHealth) -> None:
        """Use `health` for Redis; the heartbeat, which reports it, is dropped when it changes."""
        self.health = health
        health.listeners.append(lambda healthy: self.drop_local(["heartbeat"]))

    def _redis_key(self, tag: str) -> str:
        return f"{self.prefix}cache:{tag}"

    # -- reads --------------------------------------------------------------------------------
    def local(self, key: str) -> Entry | None:
        item = self._local.get(key)
        if item is None:
            return None
        if item.expires < self.clock():
            self._forget_key(key)
            return None
        return item.entry

    async def shared(self, tag: str, key: str) -> Entry | None:
        if self.client is None or not self.health.may_try():
            return None
        try:
            raw = await self.client.hget(self._redis_key(tag), key)
        except REDIS_ERRORS as exc:
            self.health.failed(exc)
            return None
        self.health.succeeded()
        return Entry.decode(raw, self.wall()) if isinstance(raw, bytes) else None

    def keep_local(self, tag: str, key: str, entry: Entry) -> None:
        if self.local_ttl <= 0:
            return
        self._local[key] = _Local(self.clock() + self.local_ttl, tag, entry)
        self._local.move_to_end(key)
        self._tags.setdefault(tag, set()).add(key)
        while len(self._local) > self.maxsize:
            old, item = self._local.popitem(last=False)
            self._untag(item.tag, old)

    async def keep_shared(self, tag: str, key: str, entry: Entry, ttl: float) -> None:
        if self.client is None or ttl <= 0 or not self.health.may_try():
            return
        name = self._redis_key(tag)
        now = self.clock()
        try:
            if now - self._refreshed.get(tag, -HASH_REFRESH) < HASH_REFRESH:
                await self.client.hset(name, key, entry.encode(self.wall() + ttl))
                return
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hset(name, key, entry.encode(self.wall() + ttl))
                pipe.expire(name, HASH_LIFETIME)
                await pipe.execute()
            self._refreshed[tag] = now
        except REDIS_ERRORS as exc:
            self.health.failed(exc)

    # -- invalidation ------------------------------------------------------------------------
    def _untag(self, tag: str, key: str) -> None:
        keys = self._tags.get(tag)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._tags[tag]

    def _forget_key(self, key: str) -> None:
        item = self._local.pop(key, None)
        if item is not None:
            self._untag(item.tag, key)

    def drop_local(self, tags: list[str]) -> None:
        """Forget this node's entries of `tags` (an event from another node, or a write here)."""
        for tag in tags:
            self._generation[tag] = self._generation.get(tag, 0) + 1
            self._refreshed.pop(tag, None)  # another node may have deleted the hash
            for key in self._tags.pop(tag, set()):
                self._local.pop(key, None)
        for hook in self.on_dropped:
            hook(tags)

    def invalidate(self, *tags: str) -> None:
        """A write here changed what `tags` cache (call it after the commit): drop them here, then in
        Redis, then (through the relay) on every other node, in that order, so that no node refills its
        local tier from a Redis copy older than the write."""
        names = list(tags)
        self.drop_local(names)
        if self.client is None or not self.health.may_try():
            self._tell_others(names)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no running loop (a script): nothing shared to drop
            return
        for tag in names:
            self._dropping[tag] = self._dropping.get(tag, 0) + 1
            self._refreshed.pop(tag, None)
        task = loop.create_task(self._drop_shared(names))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _drop_shared(self, tags: list[str]) -> None:
        assert self.client is not None
        try:
            await self.client.delete(*[self._redis_key(t) for t in tags])
        except REDIS_ERRORS as exc:
            self.health.failed(exc)
        finally:
            for tag in tags:
                left = self._dropping.get(tag, 1) - 1
                if left > 0:
                    self._dropping[tag] = left
                else:
                    self._dropping.pop(tag, None)
            self._tell_others(tags)

    def _tell_others(self, tags: list[str]) -> None:
        if self.on_invalidated is not None:
            self.on_invalidated(tags)

    def request_changed(self, request_id: str) -> None:
        """A request changed (here or on another node): its cached status goes."""
        tag = f"request:{request_id}"
        keys = self._tags.pop(tag, None)
        for key in keys or ():
            self._local.pop(key, None)
        if tag in self._inflight_tags:
            self._generation[tag] = self._generation.get(tag, 0) + 1

    def generation(self, tag: str) -> int:
        return self._generation.get(tag, 0)

    async def close(self) -> None:
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()

    # -- one lookup, with at most one computation per key on this node --------------------------
    async def lookup(self, tag: str, key: str, shared_ttl: float) -> tuple[Entry | None, bool]:
        """The entry under `key` and, when there is none, whether this caller must fill it (True) or
        just compute its own answer (False: another caller's computation was not cacheable)."""
        entry = self.local(key)
        if entry is not None:
            _LOCAL_HIT.inc()
            return entry, False
        waiting = self._inflight.get(key)
        if waiting is not None:
            entry = await asyncio.shield(waiting)
            if entry is not None:
                _LOCAL_HIT.inc()
            return entry, False
        self._inflight[key] = asyncio.get_running_loop().create_future()
        self._inflight_tags[tag] = self._inflight_tags.get(tag, 0) + 1
        if shared_ttl > 0 and tag not in self._dropping:  # a dropping tag's Redis copy predates a write
            try:
                entry = await self.shared(tag, key)
            except BaseException:  # cancelled: the callers waiting on this key compute their own
                self.settle(tag, key, None)
                raise
            if entry is not None:
                _SHARED_HIT.inc()
                self.keep_local(tag, key, entry)
                self.settle(tag, key, entry)
                return entry, False
        CACHE_MISSES.inc()
        return None, True

    def settle(self, tag: str, key: str, entry: Entry | None) -> None:
        """The computation of `key` ended: hand its entry (None: not cacheable) to those waiting."""
        count = self._inflight_tags.get(tag, 0) - 1
        if count > 0:
            self._inflight_tags[tag] = count
        else:
            self._inflight_tags.pop(tag, None)
            if tag.startswith("request:"):
                self._generation.pop(tag, None)
        future = self._inflight.pop(key, None)
        if future is not None and not future.done():
            future.set_result(entry)


def _key_hash(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"apikey":
            return hashlib.sha256(bytes(value).strip()).hexdigest()[:32]
    return "-"


def _bypass(scope: Scope) -> bool:
    """A long poll (`Horde-Wait`) waits for a change: never answered from a copy."""
    return any(name == b"horde-wait" for name, _ in scope["headers"])


def match(path: str) -> tuple[CachedRoute, str] | None:
    """The cached route of `path` and its tag (a request's own tag for status routes)."""
    if not _PREFILTER.match(path):
        return None
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is not None:
            if route.tag == "request":
                return route, f"request:{found.group(1).lower()}"
            return route, route.tag
    return None


def cache_key(scope: Scope, route: CachedRoute) -> str:
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    pairs = sorted(parse_qsl(query, keep_blank_values=True), key=lambda p: p[0])  # stable: keeps repeats
    key = str(scope["path"]) + ("?" + urlencode(pairs) if pairs else "")
    return key + "|" + _key_hash(scope) if route.per_key else key


class AnswerCacheMiddleware:
    """Serves the cached GET routes from the cache (`ROUTES`), and fills it with their 200 answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        found = match(scope["path"])
        horde = getattr(scope["app"].state, "horde", None) if found is not None else None
        cache: AnswerCache | None = getattr(horde, "cache", None)
        if found is None or cache is None or not cache.enabled or _bypass(scope):
            await self.app(scope, receive, send)
            return
        route, tag = found
        key = cache_key(scope, route)
        entry, fill = await cache.lookup(tag, key, route.shared_ttl)
        if entry is not None:
            await _replay(entry, send)
            return
        if not fill:
            await self.app(scope, receive, send)
            return
        await self._compute(scope, receive, send, cache, route, tag, key)

    async def _compute(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        cache: AnswerCache,
        route: CachedRoute,
        tag: str,
        key: str,
    ) -> None:
        made_at = cache.wall()
        generation = cache.generation(tag)
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, headers, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body" and status == 200:
                body = message.get("body", b"")
                size += len(body)
                if size <= MAX_BODY:
                    chunks.append(body)
            await send(message)

        entry: Entry | None = None
        try:
            await self.app(scope, receive, capture)
            if status == 200 and size <= MAX_BODY:
                entry = Entry(headers, b"".join(chunks), made_at)
        finally:
            current = cache.generation(tag) == generation
            cache.settle(tag, key, entry)
        if entry is not None and current:
            cache.keep_local(tag, key, entry)
            await cache.keep_shared(tag, key, entry, route.shared_ttl)


async def _replay(entry: Entry, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
    await send({"type": "http.response.body", "body": entry.body})
