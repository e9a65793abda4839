"""When the client retries a call, and how long it waits in between.

A call is retried only if repeating it cannot double an effect. Reads and cancels (`SAFE`) are retried
on any transient failure: no answer, a 5xx, a garbled answer, the rate limiter. A job submit is `SAFE`
too, because the horde answers a repeat with DuplicateGen, which the client reads as "already
submitted". Everything else (`UNSENT`: new requests, pops) is retried only when the horde cannot have
acted on it: the connection was never made, or the answer was 429 without an rc or 503.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

import httpx

from horde.client._exceptions import BadResponse, HordeError, HordeUnreachable, RateLimited, ServerError

__all__ = ["NO_RETRY", "Idempotency", "RetryPolicy"]

# Failures that happen before the request leaves this process: the horde saw nothing.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Idempotency(Enum):
    SAFE = "safe"  # repeating it has no further effect
    UNSENT = "unsent"  # retry only when the horde cannot have acted on it


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Up to ``attempts`` tries; the wait before try n+1 is random in [0, min(cap, base * 2**n)]."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 10.0

    def delay(self, attempt: int, error: HordeError | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based); honours a Retry-After hint."""
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        wait = random.uniform(0, ceiling)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            wait = max(wait, min(error.retry_after, self.cap))
        return wait

    def should_retry(self, error: HordeError, *, attempt: int, idempotency: Idempotency) -> bool:
        """Whether to try again after ``error`` on try number ``attempt``."""
        if attempt >= self.attempts:
            return False
        if isinstance(error, RateLimited):
            return True
        if idempotency is Idempotency.SAFE:
            return isinstance(error, HordeUnreachable | ServerError | BadResponse)
        if isinstance(error, ServerError):
            return error.status == 503
        return isinstance(error, HordeUnreachable) and isinstance(error.__cause__, _NOT_SENT)


NO_RETRY = RetryPolicy(attempts=1)
"""A policy that never retries."""
