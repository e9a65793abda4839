"""An empty database upgraded to head matches the models exactly, on both dialects."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Connection

from horde.server.db import open_database
from horde.server.migrate import is_at_head, upgrade_to_head
from horde.server.models import metadata
from tests import services


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _check(url: str) -> None:
    db = open_database(url, pool_size=1)
    try:
        await upgrade_to_head(db)
        await upgrade_to_head(db)  # idempotent: a second node starting finds nothing to do
        assert await is_at_head(db)
        async with db.engine.connect() as conn:
            differences = await conn.run_sync(_diff)
        assert differences == [], f"models and migrations differ: {differences}"
    finally:
        await db.dispose()


async def test_sqlite_upgrade_matches_models(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}")


async def test_postgresql_upgrade_matches_models() -> None:
    try:
        db = await services.create_postgres_database()
    except Exception as exc:
        services.unavailable("PostgreSQL", exc)
    try:
        await _check(db.url)
    finally:
        await services.drop_postgres_database(db)


def _upgrade_in_own_loop(url: str, *, slow_commits: bool = False) -> None:
    db = open_database(url, pool_size=1)
    if slow_commits:  # widen the window between this node's last statements and its commit

        @event.listens_for(db.engine.sync_engine, "commit")
        def _slow(_connection: object) -> None:
            time.sleep(0.4)

    async def run() -> None:
        try:
            await upgrade_to_head(db)
        finally:
            await db.dispose()

    asyncio.run(run())


async def _migration_lock_held(url: str) -> bool:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await conn.close()
    return bool(held)


async def test_a_node_waiting_for_the_migration_lock_finds_the_chain_committed() -> None:
    # Node A migrates an empty database with slow commits; node B starts once A holds the lock. B must
    # see A's schema when it gets the lock: a lock released before the commit made B run the chain again
    # and fail on the first migration's tables (two nodes started together in CI).
    try:
        db = await services.create_postgres_database()
    except Exception as exc:
        services.unavailable("PostgreSQL", exc)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(_upgrade_in_own_loop, db.url, slow_commits=True)
            deadline = time.monotonic() + 30
            while not await _migration_lock_held(db.url):
                assert time.monotonic() < deadline and not first.done(), "node A never took the lock"
                await asyncio.sleep(0.005)
            second = pool.submit(_upgrade_in_own_loop, db.url)
            first.result(timeout=120)
            second.result(timeout=120)
        check = open_database(db.url, pool_size=1)
        try:
            assert await is_at_head(check)
        finally:
            await check.dispose()
    finally:
        await services.drop_postgres_database(db)
