"""Rate-limit counting cost: the horde's counters against the `limits` library, per hit.

    uv run --with limits python -m bench.ratelimit_storage [--hits 20000] [--keys 1,50000]
        [--redis redis://127.0.0.1:6379/14]

CPU per hit (process time) for memory counters and Redis counters, with one key and with many
distinct keys (one per client IP), so a choice between them is made on numbers (STYLE: measure a
library on a hot path before adopting it there). `limits` is not a dependency of the horde (see
`server/ratelimit.py` for why); `--with limits` brings it for this comparison only.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from horde.server.ratelimit import MemoryCounters, RedisCounters

Hit = Callable[[str], Awaitable[object]]


async def _measure(hit: Hit, hits: int, keys: int) -> float:
    names = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(keys)]
    for name in names[: min(keys, 1000)]:
        await hit(name)  # warm
    start = time.process_time()
    for i in range(hits):
        await hit(names[i % keys])
    return (time.process_time() - start) / hits * 1e6


async def main(hits: int, keys: list[int], redis_url: str) -> None:
    from limits import RateLimitItemPerMinute
    from limits.aio.storage import MemoryStorage, RedisStorage
    from limits.aio.strategies import FixedWindowRateLimiter

    item = RateLimitItemPerMinute(90)
    rows: list[tuple[str, int, float]] = []
    for n in keys:
        ours = MemoryCounters()
        rows.append(("horde MemoryCounters", n, await _measure(lambda k, c=ours: c.hit(k, 60), hits, n)))
        lib = FixedWindowRateLimiter(MemoryStorage())
        rows.append(("limits MemoryStorage", n, await _measure(lambda k, s=lib: s.hit(item, k), hits, n)))
        client = aioredis.from_url(redis_url)
        prefix = f"bench-{uuid.uuid4().hex}:"
        redis_ours = RedisCounters(client, prefix)
        rows.append(("horde RedisCounters", n, await _measure(lambda k, c=redis_ours: c.hit(k, 60), hits, n)))
        storage = RedisStorage(redis_url.replace("redis://", "async+redis://"), implementation="redispy")
        redis_lib = FixedWindowRateLimiter(storage)
        rows.append(
            ("limits RedisStorage", n, await _measure(lambda k, s=redis_lib: s.hit(item, k), hits, n))
        )
        await client.aclose()
    for name, n, micros in rows:
        print(f"{name:24s} keys={n:6d}  {micros:8.1f} us CPU/hit")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=20000)
    parser.add_argument("--keys", default="1,50000")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    asyncio.run(main(args.hits, [int(k) for k in args.keys.split(",")], args.redis))
