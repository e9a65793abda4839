"""Wake-ups for parked requests: new work for idle workers, changes for waiting clients.

In-process events; a Redis relay (when configured) carries them between API nodes. A missed wake-up
only costs latency: every waiter re-checks the database when it wakes or times out.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Callable


class Notifier:
    """Events to park on. Watch first, then check the database, then wait: a change between the
    check and the wait still wakes the waiter, because the event it waits on was already registered."""

    def __init__(self) -> None:
        self._work: dict[str, asyncio.Event] = {}
        self._requests: weakref.WeakValueDictionary[uuid.UUID, asyncio.Event] = weakref.WeakValueDictionary()
        self._closing = asyncio.Event()
        self.relay: RelayHook | None = None
        # Count the work added that this node has heard of (its own and, through the relay, other
        # nodes'), per kind plus what concerned every kind: a queue snapshot of a kind taken at
        # `work_version(kind)` v knows of all the work of that kind added before v. Per kind, so new
        # text work does not invalidate the image snapshot's proofs (ADR 0013).
        self._versions: dict[str, int] = {}
        self._every_kind = 0
        self.on_filters_changed: Callable[[], None] | None = None  # the node's filter cache
        # the node's answer cache (ADR 0026): another node invalidated these tags; a request changed
        self.on_cache_invalidated: Callable[[list[str]], None] | None = None
        self.on_request_changed: Callable[[uuid.UUID], None] | None = None

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def close(self) -> None:
        """The server is stopping: every parked request answers now."""
        self._closing.set()

    def watch_work(self, kind: str) -> asyncio.Event:
        event = self._work.get(kind)
        if event is None:
            event = self._work[kind] = asyncio.Event()
        return event

    def watch_request(self, request_id: uuid.UUID) -> asyncio.Event:
        event = self._requests.get(request_id)
        if event is None:
            event = asyncio.Event()
            self._requests[request_id] = event
        return event

    def work_version(self, kind: str) -> int:
        return self._every_kind + self._versions.get(kind, 0)

    def work_added(self, kind: str | None, *, relay: bool = True) -> None:
        """Wake workers parked on `kind` (every kind when None)."""
        if kind is None:
            self._every_kind += 1
        else:
            self._versions[kind] = self._versions.get(kind, 0) + 1
        kinds = list(self._work) if kind is None else [kind]
        for name in kinds:
            event = self._work.pop(name, None)
            if event is not None:
                event.set()
        if relay and self.relay is not None:
            self.relay.publish("work", kind or "")

    def request_changed(self, request_id: uuid.UUID, *, relay: bool = True) -> None:
        if self.on_request_changed is not None:
            self.on_request_changed(request_id)
        event = self._requests.pop(request_id, None)
        if event is not None:
            event.set()
        if relay and self.relay is not None:
            self.relay.publish("request", str(request_id))

    def cache_invalidated(self, tags: list[str], *, relay: bool = True) -> None:
        """Cached answers of `tags` changed: a write here tells the other nodes (relay=True; this node
        already dropped them), an event from another node drops them here (relay=False)."""
        if relay:
            if self.relay is not None:
                self.relay.publish("cache", ",".join(tags))
        elif self.on_cache_invalidated is not None:
            self.on_cache_invalidated(tags)

    def filters_changed(self, *, relay: bool = True) -> None:
        """The prompt filters changed (after the write committed): reload them here and on every node."""
        if self.on_filters_changed is not None:
            self.on_filters_changed()
        if relay and self.relay is not None:
            self.relay.publish("filters", "")

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for a watched event; True when it fired, False on timeout or when closing."""
        if timeout <= 0 or self.closing:
            return event.is_set()
        closing = asyncio.ensure_future(self._closing.wait())
        fired = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait((closing, fired), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            fired.cancel()
        return event.is_set()

    async def wait_for_work(self, kind: str, timeout: float) -> bool:
        return await self.wait(self.watch_work(kind), timeout)

    async def wait_for_request(self, request_id: uuid.UUID, timeout: float) -> bool:
        return await self.wait(self.watch_request(request_id), timeout)


class RelayHook:
    """Publishes local events to other nodes (implemented over Redis in `server/redis.py`)."""

    def publish(self, channel: str, value: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError
