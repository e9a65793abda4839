"""Node-local cache of worker records by name, the check-in debounce (SEMANTICS.md 3.3.3) and the
check-in writes that run beside the pops (ADR 0013)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from horde.server.kit.cache import TTLCache
from horde.server.kit.clock import Clock
from horde.server.workers.models import Worker

log = logging.getLogger(__name__)
BACKGROUND_WRITERS = 2  # connections the due check-ins may hold at once: the pops keep the rest


@dataclass
class CachedWorker:
    worker: Worker
    written_at: float  # when this node last wrote a check-in
    signature: tuple[object, ...]  # the declared capabilities of that check-in
    due_at: float = 0.0  # when the next unchanged check-in is written (spread, ADR 0013)
    # what the pop derives from the record, kept while the record is (key: owner trust, amount)
    profiles: dict[tuple[bool, int], object] = field(default_factory=dict)


class WorkerCache:
    def __init__(self, clock: Clock, ttl: float = 90.0) -> None:
        # longer than the latest due check-in (1.5 x the debounce): a worker popping steadily keeps
        # its record, refreshed by each write, and never finds it gone on its pop's path
        self._by_name: TTLCache[str, CachedWorker] = TTLCache(ttl=ttl, maxsize=50_000, clock=clock.now)
        self._writing: dict[str, asyncio.Task[None]] = {}
        self._writers = asyncio.Semaphore(BACKGROUND_WRITERS)
        self.writes_started = 0

    def get(self, name: str) -> CachedWorker | None:
        return self._by_name.get(name.lower())

    def put(self, entry: CachedWorker) -> None:
        self._by_name.put(entry.worker.name_lower, entry)

    def forget(self, name: str) -> None:
        self._by_name.pop(name.lower())

    def clear(self) -> None:
        self._by_name.clear()

    def write_later(self, name: str, write: Callable[[], Awaitable[None]]) -> None:
        """Run `write` (a due check-in) beside the pop that found it due, once per name at a time and
        at most BACKGROUND_WRITERS at once; a failure is logged and the next pop tries again."""
        key = name.lower()
        if key in self._writing:
            return

        async def run() -> None:
            try:
                async with self._writers:
                    await write()
            except Exception:
                log.warning("background check-in of %s failed", name, exc_info=True)
            finally:
                self._writing.pop(key, None)

        self.writes_started += 1
        self._writing[key] = asyncio.get_running_loop().create_task(run())

    async def close(self) -> None:
        """Finish the check-ins in flight (the database is about to close)."""
        await asyncio.gather(*self._writing.values(), return_exceptions=True)
