"""Redis, when configured: it carries wake-ups between API nodes (never the source of truth).

Every node publishes its local events (new work of a kind, a request that changed) on one channel
and relays what other nodes publish to its own parked requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid

import redis.asyncio as aioredis

from horde.server.kit.notify import Notifier, RelayHook

log = logging.getLogger(__name__)


class RedisRelay(RelayHook):
    def __init__(self, client: aioredis.Redis, *, prefix: str, notifier: Notifier) -> None:
        self.client = client
        self.channel = f"{prefix}events"
        self.notifier = notifier
        self.node = uuid.uuid4().hex
        self._pending: set[asyncio.Task[object]] = set()
        self._listener: asyncio.Task[None] | None = None

    def publish(self, channel: str, value: str) -> None:
        message = json.dumps({"node": self.node, "channel": channel, "value": value})
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(self._publish(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, message: str) -> object:
        try:
            return await self.client.publish(self.channel, message)
        except aioredis.RedisError as exc:  # a lost wake-up only costs latency
            log.warning("could not publish a wake-up: %s", exc)
            return None

    async def start(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        self._listener = asyncio.create_task(self._listen(pubsub), name="redis-relay")

    async def _listen(self, pubsub: aioredis.client.PubSub) -> None:
        try:
            async for message in pubsub.listen():
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
        elif event.get("channel") == "request":
            with contextlib.suppress(ValueError):
                self.notifier.request_changed(uuid.UUID(str(event.get("value"))), relay=False)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self.client.aclose()


async def connect_relay(url: str, *, prefix: str, notifier: Notifier) -> RedisRelay:
    """Connect, subscribe and attach the relay to the notifier."""
    client = aioredis.from_url(url, socket_timeout=5, health_check_interval=30)
    await client.ping()
    relay = RedisRelay(client, prefix=prefix, notifier=notifier)
    await relay.start()
    notifier.relay = relay
    return relay
