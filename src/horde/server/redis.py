"""Redis, when configured: it carries rate-limit counters and wake-ups between API nodes, never the
source of truth, so losing it degrades the horde but never stops it.

Every node publishes its local events (new work of a kind, a request that changed) on one channel
and relays what other nodes publish to its own parked requests. When Redis is unreachable, the rate
limits count in this process (`ratelimit.py`), a parked request on this node learns of work queued on
another one at its next re-check or snapshot refresh (within a second or two), the heartbeat says
DEGRADED, and the listener reconnects with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from horde.server.kit.notify import Notifier, RelayHook

log = logging.getLogger(__name__)

REDIS_ERRORS = (aioredis.RedisError, OSError)


class RedisHealth:
    """Whether Redis answered lately, and when to try it again after it did not (back-off)."""

    def __init__(self, *, first_delay: float = 0.5, max_delay: float = 30.0) -> None:
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.healthy = True
        self.retry_at = 0.0
        self.delay = first_delay
        self.listeners: list[Callable[[bool], None]] = []  # told when Redis goes away or comes back

    def failed(self, exc: BaseException, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.healthy:
            log.warning("Redis is unreachable (%s): counting and waking in this process", exc)
            self.delay = self.first_delay
            self.healthy = False
            for listener in self.listeners:
                listener(False)
        else:
            self.delay = min(self.delay * 2, self.max_delay)
        self.healthy = False
        self.retry_at = now + self.delay

    def succeeded(self) -> None:
        if not self.healthy:
            log.warning("Redis answers again")
            self.healthy = True
            for listener in self.listeners:
                listener(True)
        self.healthy = True
        self.delay = self.first_delay

    def may_try(self, *, now: float | None = None) -> bool:
        return self.healthy or (time.monotonic() if now is None else now) >= self.retry_at


class RedisRelay(RelayHook):
    def __init__(
        self, client: aioredis.Redis, *, prefix: str, notifier: Notifier, health: RedisHealth
    ) -> None:
        self.client = client
        self.channel = f"{prefix}events"
        self.notifier = notifier
        self.health = health
        self.node = uuid.uuid4().hex
        self._pending: set[asyncio.Task[object]] = set()
        self._listener: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    def publish(self, channel: str, value: str) -> None:
        if not self.health.may_try():
            return  # a lost wake-up only costs latency; do not queue them against a dead server
        message = json.dumps({"node": self.node, "channel": channel, "value": value})
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(self._publish(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, message: str) -> object:
        try:
            return await self.client.publish(self.channel, message)
        except REDIS_ERRORS as exc:
            self.health.failed(exc)
            return None

    def start(self) -> None:
        self._listener = asyncio.create_task(self._run(), name="redis-relay")

    async def _run(self) -> None:
        """Listen, and after any failure reconnect with back-off, for as long as the node runs."""
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of the connection: wait and reconnect
                self.health.failed(exc)
            await asyncio.sleep(self.health.delay)

    async def _listen(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self.health.succeeded()
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is None:
                    await pubsub.ping()  # notices a dead connection while nothing is published
                    continue
                self._dispatch(message.get("data"))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, data: object) -> None:
        try:
            event = json.loads(data if isinstance(data, str | bytes) else "")
        except ValueError:
            return
        if not isinstance(event, dict) or event.get("node") == self.node:
            return
        if event.get("channel") == "work":
            self.notifier.work_added(event.get("value") or None, relay=False)
        elif event.get("channel") == "cache":
            self.notifier.cache_invalidated(str(event.get("value") or "").split(","), relay=False)
        elif event.get("channel") == "filters":
            self.notifier.filters_changed(relay=False)
        elif event.get("channel") == "request":
            with contextlib.suppress(ValueError):
                self.notifier.request_changed(uuid.UUID(str(event.get("value"))), relay=False)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self.client.aclose()


def redis_client(url: str, *, timeout: float, **options: Any) -> aioredis.Redis:
    """A client whose command on a connection Redis closed (a restart) is retried once on a new one:
    without it every stale pooled connection fails a command after Redis returns, and each failure
    doubles `RedisHealth`'s back-off, so a node took minutes to use Redis again (the chaos test)."""
    return aioredis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError], **options,
    )  # fmt: skip


async def connect_relay(
    url: str, *, prefix: str, notifier: Notifier, health: RedisHealth | None = None
) -> RedisRelay:
    """Attach a relay to the notifier and start listening (Redis may be down: it connects when it can)."""
    health = health or RedisHealth()
    client = redis_client(url, timeout=5, health_check_interval=30)
    relay = RedisRelay(client, prefix=prefix, notifier=notifier, health=health)
    relay.start()
    notifier.relay = relay
    with contextlib.suppress(TimeoutError):  # Redis down at start-up: serve, and connect later
        await asyncio.wait_for(relay.subscribed.wait(), timeout=2.0)
    return relay
