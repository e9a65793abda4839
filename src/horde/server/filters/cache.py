"""Each node's compiled filters: reloaded when the filters table's version moves (looked at, at most once
per refresh interval, when a prompt needs them), at once after a write on this node, and on a Redis
message from the node that wrote."""

from __future__ import annotations

import asyncio

from horde.server.db import Database
from horde.server.filters import service
from horde.server.filters.regexes import FilterSet
from horde.server.kit.clock import Clock


class FilterCache:
    def __init__(self, clock: Clock, *, interval: float = 1.0) -> None:
        self.clock = clock
        self.interval = interval
        self._set = FilterSet()
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """The next use looks at the version (a write here or, through the relay, on another node)."""
        self._checked_at = float("-inf")

    async def current(self, db: Database) -> FilterSet:
        """The compiled filters, at most `interval` seconds behind the table."""
        if self.clock.now() - self._checked_at < self.interval:
            return self._set
        async with self._lock:  # one reload at a time; the others then find it fresh
            if self.clock.now() - self._checked_at < self.interval:
                return self._set
            async with db.autocommit() as conn:
                version = await service.current_version(conn)
                if version != self._set.version:
                    self._set = await service.load_filter_set(conn)
            self._checked_at = self.clock.now()
        return self._set
