"""Node-local cache of worker records by name, and the check-in debounce (SEMANTICS.md 3.3.3)."""

from __future__ import annotations

from dataclasses import dataclass, field

from horde.server.kit.cache import TTLCache
from horde.server.kit.clock import Clock
from horde.server.workers.models import Worker


@dataclass
class CachedWorker:
    worker: Worker
    written_at: float  # when this node last wrote a check-in
    signature: tuple[object, ...]  # the declared capabilities of that check-in
    # what the pop derives from the record, kept while the record is (key: owner trust, amount)
    profiles: dict[tuple[bool, int], object] = field(default_factory=dict)


class WorkerCache:
    def __init__(self, clock: Clock, ttl: float = 30.0) -> None:
        self._by_name: TTLCache[str, CachedWorker] = TTLCache(ttl=ttl, maxsize=50_000, clock=clock.now)

    def get(self, name: str) -> CachedWorker | None:
        return self._by_name.get(name.lower())

    def put(self, entry: CachedWorker) -> None:
        self._by_name.put(entry.worker.name_lower, entry)

    def forget(self, name: str) -> None:
        self._by_name.pop(name.lower())

    def clear(self) -> None:
        self._by_name.clear()
