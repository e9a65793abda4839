"""Waiting after failures: exponential back-off with jitter, reset by a success."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """The n-th consecutive failure waits a random time in [d/2, d], d = min(cap, base * 2**(n-1)).

    Half the delay is kept fixed so that many workers failing together never hammer a struggling
    horde with near-zero waits; the other half spreads them apart.
    """

    base: float = 1.0
    cap: float = 60.0
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next(self) -> float:
        """Record one more failure and return how long to wait before trying again."""
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures - 1, 62))
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """A success: the next failure starts from ``base`` again."""
        self.failures = 0
