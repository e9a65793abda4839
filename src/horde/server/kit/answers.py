"""Computed answers (model lists, totals, user pages) kept for a few seconds on this node."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar, cast

from horde.server.kit.clock import Clock

T = TypeVar("T")


class Answers:
    """Computed answers kept for a few seconds on this node, each with its own lifetime."""

    def __init__(self, clock: Clock, maxsize: int = 2_000) -> None:
        self._clock = clock
        self._maxsize = maxsize
        self._data: OrderedDict[tuple[Hashable, ...], tuple[float, object]] = OrderedDict()
        # set by the answer cache (ADR 0026): a forget is then also a cluster-wide invalidation
        self.on_forget: Callable[[str], None] | None = None

    async def get(self, key: tuple[Hashable, ...], ttl: float, compute: Callable[[], Awaitable[T]]) -> T:
        """The answer under `key`, computed again when older than `ttl` seconds."""
        hit = self._data.get(key)
        if hit is not None and hit[0] > self._clock.now():
            return cast(T, hit[1])
        value = await compute()
        self._data[key] = (self._clock.now() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._maxsize:
            self._data.popitem(last=False)
        return value

    def forget(self, prefix: str) -> None:
        """Drop every answer whose key starts with `prefix` (after a change made on this node), here and,
        through the answer cache's invalidation, on every node."""
        if self.on_forget is not None:
            self.on_forget(prefix)  # comes back here as `drop`
        else:
            self.drop(prefix)

    def drop(self, prefix: str) -> None:
        """Drop this node's answers whose key starts with `prefix`."""
        for key in [k for k in self._data if k and k[0] == prefix]:
            del self._data[key]
