"""Per-test isolation without truncating: a rolled-back transaction on PostgreSQL, a fresh file on SQLite.

PostgreSQL: the test's horde gets a pool of one connection, and that connection an outer asyncpg
transaction that the test rolls back. Every SQLAlchemy transaction the server opens on it is then a
savepoint (asyncpg nests `transaction()` blocks), and every autocommit block runs in a savepoint of its
own, so a statement that fails rolls back to it instead of aborting the outer transaction (what the
block wrote before an exception that is not the database's is kept, as autocommit would keep it). The server
runs its production code unchanged, driver statements included; only its commits become releases.

SQLite: each test copies a migrated template file (a millisecond), so it commits for real.

Tests that need committed data seen by other connections or processes (`@pytest.mark.committed`:
racing connections, a second node, a CLI against the same database) get the shared database, cleaned
before they run, instead.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.db import Database, create_engine
from horde.server.kit.sql import driver_connection
from horde.server.migrate import upgrade_to_head
from horde.server.models import metadata

_migrated: set[str] = set()
_SAVEPOINT = "horde_autocommit"


async def migrate_once(url: str) -> None:
    """Bring the run's database (or SQLite template) to the newest migration, once per run."""
    if url in _migrated:
        return
    db = Database(engine=create_engine(url, pool_size=1), url=url)
    try:
        await upgrade_to_head(db)
    finally:
        await db.dispose()
    _migrated.add(url)


def sqlite_copy(template_url: str, directory: Path) -> str:
    """A fresh copy of the migrated template file in `directory`; its URL."""
    source = make_url(template_url).database
    assert source is not None
    target = directory / "horde.sqlite3"
    shutil.copyfile(source, target)
    return f"sqlite+aiosqlite:///{target}"


async def clean(db: Database) -> None:
    """Empty every table but the anonymous user, and restart user ids at 1 (committed tests)."""
    async with db.transaction() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name == "users":
                await conn.execute(delete(table).where(table.c.id != 0))
            else:
                await conn.execute(delete(table))
        if not db.is_sqlite:
            await conn.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), 1, false)"))


class RolledBackDatabase(Database):
    """A PostgreSQL database whose every change the test rolls back (see the module docstring)."""

    _driver: Any
    _outer: Any

    @classmethod
    async def open(cls, url: str) -> RolledBackDatabase:
        db = cls(engine=create_engine(url, pool_size=1), url=url)
        async with db._autocommit.connect() as conn:
            db._driver = await driver_connection(conn)
            db._outer = db._driver.transaction(isolation="read_committed")
            await db._outer.start()
            # sequences ignore rollbacks: user ids restart at 1 as on a fresh database
            await db._driver.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), 1, false)")
        return db

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        async with super().autocommit() as conn:
            driver = await driver_connection(conn)
            await driver.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                yield conn
            except BaseException:
                # keep what the block wrote, as autocommit does, unless a failed statement aborted it
                try:
                    await driver.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
                except asyncpg.PostgresError:
                    await driver.execute(
                        f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}"
                    )
                raise
            await driver.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")

    async def dispose(self) -> None:
        """Roll everything back; if the pool replaced the connection (it never should), what was
        committed on the new one is cleaned up so the next test starts empty."""
        async with self._autocommit.connect() as conn:
            same = await driver_connection(conn) is self._driver
        if same:
            await self._outer.rollback()
        else:
            await clean(self)
        await super().dispose()
