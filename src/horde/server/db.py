"""Engines, connections, advisory locks and the SQLite single-writer rules (ADR 0002).

With `jobs/statements/`, the only place that knows which database it runs on."""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_AFTER_COMMIT = "horde.after_commit"  # key in Connection.info: the unit's callbacks while it runs


def after_commit(conn: AsyncConnection, callback: Callable[[], None]) -> None:
    """Run `callback` once the unit of work on `conn` has committed (never if it rolls back); on an
    autocommit connection every statement has committed already, so it runs at once.

    For what leaves the process or changes node-local caches: done before the commit, a concurrent
    request could cache the old rows again, or a webhook could announce what then fails to commit."""
    pending: list[Callable[[], None]] | None = conn.info.get(_AFTER_COMMIT)
    if pending is not None:
        pending.append(callback)
    elif conn.sync_connection is not None and (
        conn.sync_connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    ):
        callback()
    else:
        raise RuntimeError("after_commit needs a connection from Database.unit() or an autocommit one")


class DatabaseLocked(RuntimeError):
    """Another server process already owns this SQLite file."""


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves: pysqlite's implicit BEGIN is deferred.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        # FULL: a commit is on disk before it returns, so an answered request survives a power loss
        # (NORMAL can lose the last commits); the README says what the embedded mode promises
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front so no transaction upgrades a read lock under contention.
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(
    url: str, *, pool_size: int = 10, statement_cache: bool = True, **kwargs: Any
) -> AsyncEngine:
    """Create an async engine with the house settings for its dialect."""
    kwargs.setdefault("hide_parameters", True)  # bound values (prompts, key hashes) stay out of errors
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=max(1, pool_size), max_overflow=0, **kwargs)
        _configure_sqlite(engine)
        return engine
    # Overflow connections would be opened and closed per checkout (a backend fork each time), so
    # the pool is sized for the load and requests queue for a connection; one that cannot get a
    # connection within pool_timeout answers 503 (errors.py).
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        pool_pre_ping=False,
        connect_args=_connect_args(url, statement_cache=statement_cache),
        **kwargs,
    )


# asyncpg's and SQLAlchemy's caches off, and unique names for the statements still prepared (the
# PgBouncer recipe of SQLAlchemy's asyncpg documentation)
_NO_STATEMENT_CACHE: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: f"__horde_{uuid.uuid4().hex}__",
}


def _connect_args(url: str, *, statement_cache: bool = True) -> dict[str, Any]:
    """No TLS attempt towards a database on this machine (asyncpg tries TLS first by default, and
    every new connection then pays a failed handshake); elsewhere the URL decides (`?ssl=...`).
    Without the statement cache (PgBouncer in transaction mode), asyncpg prepares nothing by name."""
    parsed = make_url(url)
    args: dict[str, Any] = {} if statement_cache else dict(_NO_STATEMENT_CACHE)
    if parsed.query.get("ssl") or parsed.query.get("sslmode"):
        return args
    if parsed.host in (None, "localhost", "127.0.0.1", "::1"):
        args["ssl"] = False
    return args


@dataclass
class Database:
    """The server's engine and, on SQLite, the process lock on the file."""

    engine: AsyncEngine
    url: str
    _autocommit: AsyncEngine = field(init=False)
    _lock_fd: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def lock_file(self) -> None:
        """Refuse a second server process on the same SQLite file."""
        path = _sqlite_path(self.url) if self.is_sqlite else None
        if path is None or self._lock_fd is not None:
            return
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseLocked(
                f"{path} is already served by another horde process; use PostgreSQL to run several API nodes"
            ) from None
        self._lock_fd = fd

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[AsyncConnection]:
        """One unit of work: a transaction committed on clean exit and rolled back on error, after
        which the callbacks given to `after_commit` run (a request's connection, a scheduled task)."""
        callbacks: list[Callable[[], None]] = []
        async with self.engine.connect() as conn:
            # Connection.info travels with the pooled DBAPI connection: never leave the list behind
            conn.info[_AFTER_COMMIT] = callbacks
            try:
                async with conn.begin():
                    yield conn
            finally:
                conn.info.pop(_AFTER_COMMIT, None)
        for callback in callbacks:
            callback()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection in autocommit mode: one statement, one round trip (hot paths)."""
        async with self._autocommit.connect() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection inside one transaction, committed on clean exit."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def try_lock(self, key: int) -> AsyncIterator[bool]:
        """Hold a session-level advisory lock while the block runs, if no other process holds it
        (yields False then). SQLite serves one process only: there it is always granted."""
        if self.is_sqlite:
            yield True
            return
        async with self.engine.connect() as conn:
            got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            await conn.commit()
            try:
                yield got
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()


def hold_lock(connection: Connection, key: int) -> None:
    """Wait for a session-level advisory lock on a sync connection (PostgreSQL; SQLite has one process)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})


def release_lock(connection: Connection, key: int) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def open_database(url: str, *, pool_size: int = 10, statement_cache: bool = True) -> Database:
    """Build the Database for a URL."""
    return Database(engine=create_engine(url, pool_size=pool_size, statement_cache=statement_cache), url=url)
