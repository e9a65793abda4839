"""The worker's back-off: exponential, jittered, capped, reset by a success."""

from __future__ import annotations

import random

from horde.worker import Backoff


def test_grows_exponentially_within_jitter_bounds() -> None:
    backoff = Backoff(base=1.0, cap=60.0, rng=random.Random(1))
    for ceiling in (1, 2, 4, 8, 16, 32, 60, 60):
        delay = backoff.next()
        assert ceiling / 2 <= delay <= ceiling


def test_jitter_spreads_workers_apart() -> None:
    delays = {round(Backoff(base=1.0, rng=random.Random(seed)).next(), 6) for seed in range(50)}
    assert len(delays) > 40 and min(delays) >= 0.5 and max(delays) <= 1.0


def test_reset_starts_over_and_huge_failure_counts_stay_capped() -> None:
    backoff = Backoff(base=0.5, cap=10.0)
    for _ in range(2000):
        backoff.next()
    assert 5.0 <= backoff.next() <= 10.0
    backoff.reset()
    assert backoff.failures == 0 and 0.25 <= backoff.next() <= 0.5
