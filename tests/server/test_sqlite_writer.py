"""The SQLite single-writer rules (db.py, ADR 0002): one server process per file (a lock file), and
every transaction takes the write lock when it begins (BEGIN IMMEDIATE), so a transaction that read
first never has to upgrade its lock while another one writes (SQLITE_BUSY at the upgrade, at once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from horde.server.db import Database, DatabaseLocked, open_database

GUARD = 10.0


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite+aiosqlite:///{tmp_path / 'one.sqlite3'}", pool_size=3)
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER)"))
    yield database
    await database.dispose()


async def test_a_second_process_on_the_file_is_refused(db: Database) -> None:
    db.lock_file()
    db.lock_file()  # the owner may ask again
    second = open_database(db.url, pool_size=1)
    with pytest.raises(DatabaseLocked, match="already served by another horde process; use PostgreSQL"):
        second.lock_file()
    await db.dispose()  # the first one stops: the file is free again
    second.lock_file()
    await second.dispose()


async def test_a_transaction_holds_the_write_lock_from_its_begin(db: Database) -> None:
    """A transaction that has only read still keeps other writers out until it ends."""
    reading = asyncio.Event()
    finish = asyncio.Event()

    async def reader_then_writer() -> None:
        async with db.transaction() as conn:
            await conn.execute(text("SELECT count(*) FROM t"))
            reading.set()
            await finish.wait()
            await conn.execute(text("INSERT INTO t VALUES (1)"))  # no upgrade needed: no BUSY here

    async def writer() -> None:
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))

    first = asyncio.create_task(reader_then_writer())
    await asyncio.wait_for(reading.wait(), GUARD)
    second = asyncio.create_task(writer())
    # readers outside a transaction are not blocked (WAL) ...
    async with db.autocommit() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM t")) == 0
    # ... but the writer waits for the first transaction to end
    done, _ = await asyncio.wait({second}, timeout=0.5)
    assert not done, "a second writer began while a transaction was open: BEGIN was not IMMEDIATE"
    finish.set()
    await asyncio.wait_for(asyncio.gather(first, second), GUARD)
    async with db.autocommit() as conn:
        assert [r[0] for r in await conn.execute(text("SELECT v FROM t ORDER BY rowid"))] == [1, 2]
