"""The real services tests run against: a PostgreSQL database and a Redis index of this run's own.

PostgreSQL and Redis are found at HORDE_TEST_POSTGRES_URL / HORDE_TEST_REDIS_URL (defaults: the local
servers). When one is unreachable its tests are skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from tests import needs

ADMIN_URL = os.environ.get("HORDE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HORDE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
IN_CI = needs.IN_CI


def unavailable(what: str, error: BaseException) -> None:
    needs.missing(f"{what} is not reachable ({error}); start it or set the HORDE_TEST_* URL")


@dataclass
class PostgresDatabase:
    name: str

    @property
    def url(self) -> str:
        base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        return f"{base}/{self.name}"


async def create_postgres_database() -> PostgresDatabase:
    name = f"horde_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PostgresDatabase(name)


async def drop_postgres_database(db: PostgresDatabase) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
    finally:
        await conn.close()


async def claim_redis_index() -> int:
    """A Redis database index no other test run holds (a lock key with a TTL marks it)."""
    client = aioredis.from_url(REDIS_URL, socket_timeout=5)
    try:
        for index in range(15, 0, -1):
            if await client.set(f"horde-test-lock:{index}", os.getpid(), nx=True, ex=3600):
                return index
    finally:
        await client.aclose()
    raise RuntimeError("every Redis test index is taken")


async def release_redis_index(index: int) -> None:
    client = aioredis.from_url(f"{REDIS_URL}/{index}", socket_timeout=5)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    lock = aioredis.from_url(REDIS_URL, socket_timeout=5)
    try:
        await lock.delete(f"horde-test-lock:{index}")
    finally:
        await lock.aclose()


def run(coro: object) -> object:
    return asyncio.get_event_loop().run_until_complete(coro)  # type: ignore[arg-type]
