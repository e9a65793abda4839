"""Wake-ups for parked requests: new work for idle workers, changes for waiting clients.

In-process events; a Redis relay (when configured) carries them between API nodes. A missed wake-up
only costs latency: every waiter re-checks the database when it wakes or times out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict


class Notifier:
    def __init__(self) -> None:
        self._work: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._requests: dict[uuid.UUID, asyncio.Event] = {}
        self.relay: RelayHook | None = None

    def work_added(self, kind: str | None, *, relay: bool = True) -> None:
        """Wake workers parked on `kind` (every kind when None)."""
        kinds = list(self._work) if kind is None else [kind]
        for name in kinds:
            event = self._work.pop(name, None)
            if event is not None:
                event.set()
        if relay and self.relay is not None:
            self.relay.publish("work", kind or "")

    def request_changed(self, request_id: uuid.UUID, *, relay: bool = True) -> None:
        event = self._requests.pop(request_id, None)
        if event is not None:
            event.set()
        if relay and self.relay is not None:
            self.relay.publish("request", str(request_id))

    async def wait_for_work(self, kind: str, timeout: float) -> bool:
        return await _wait(self._work[kind], timeout)

    async def wait_for_request(self, request_id: uuid.UUID, timeout: float) -> bool:
        event = self._requests.setdefault(request_id, asyncio.Event())
        return await _wait(event, timeout)


class RelayHook:
    """Publishes local events to other nodes (implemented over Redis in `server/redis.py`)."""

    def publish(self, channel: str, value: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    if timeout <= 0:
        return False
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True
