"""SQL helpers for the hot paths: list membership with one statement text, and statements run on the
driver connection without SQLAlchemy's per-execution work (ADR 0008).

`one_of(column, name)` is `column = ANY($n)` on PostgreSQL, whatever the list's length, so the
statement is compiled once and prepared once; elsewhere it is an expanding `IN (...)`.

`Fast(statement)` holds a Core statement whose parameters are all plain bind parameters: the
PostgreSQL statement layer compiles it once to the driver's SQL and sends it straight to asyncpg on an
autocommit connection (which keeps it prepared); the SQLite layer runs it through
`AsyncConnection.execute` as usual. Rows come back as mappings either way.
Only for statements whose parameter and result types need no SQLAlchemy processing: numbers, text,
UUIDs, booleans, arrays, and JSON results (SQLAlchemy's codec on the connection decodes them); JSON
parameters and dates are left to the ordinary path.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg.exceptions as pg
from sqlalchemy import ARRAY, Boolean, ColumnElement, any_, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal


class OneOf(ColumnElement[bool]):
    """`column` is one of the values bound to `name` (a list) at execution."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # no `= 1` after it on dialects without a boolean type
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own convention: a list on the class)
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name


def one_of(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return OneOf(column, name)


@compiles(OneOf)
def _one_of_default(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    expanding = element.column.in_(bindparam(element.name, expanding=True))
    return compiler.process(expanding, **kw)


@compiles(OneOf, "postgresql")
def _one_of_postgresql(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    array = bindparam(element.name, type_=ARRAY(element.column.type))
    return compiler.process(element.column == any_(array), **kw)


def _plain(value: Any) -> Any:
    """asyncpg's own UUID type as the standard library's (they hash alike, but not every API takes it)."""
    return (
        uuid.UUID(bytes=value.bytes)
        if isinstance(value, uuid.UUID) and type(value) is not uuid.UUID
        else value
    )


def autocommit(conn: AsyncConnection) -> bool:
    sync = conn.sync_connection
    return sync is not None and sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under an autocommit `conn` (PostgreSQL only; never inside a
    transaction SQLAlchemy began, which the driver connection would not see as begun)."""
    if not autocommit(conn):
        raise RuntimeError("driver statements run on autocommit connections only")
    raw = await conn.get_raw_connection()
    return raw.driver_connection


@asynccontextmanager
async def using_driver(conn: AsyncConnection) -> AsyncIterator[Any]:
    """`driver_connection` for statements sent to the driver directly. SQLAlchemy does not see
    their failures: one that can leave the connection lost or mid-protocol (anything but a plain
    SQL error) invalidates the connection here, so the pool never hands it out again."""
    driver = await driver_connection(conn)
    try:
        yield driver
    except BaseException as exc:
        broken = (pg.PostgresConnectionError, pg.OperatorInterventionError)
        if not isinstance(exc, pg.PostgresError) or isinstance(exc, broken):
            await conn.invalidate()
        raise


def plain(record: Mapping[str, Any]) -> dict[str, Any]:
    """A driver record as a dict of standard types."""
    return {key: _plain(value) for key, value in record.items()}


class Fast:
    """A Core statement compiled once per dialect to the driver's SQL (see the module's docstring);
    the dialect's statement layer (`jobs/statements/`) runs it."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: tuple[str, tuple[str, ...], dict[str, Any]] | None = None

    def compiled_for(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """The driver's SQL, the parameter names in position order, and the values the statement
        carries itself (literals SQLAlchemy binds, such as a LIMIT)."""
        if self._compiled is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            if any(p.expanding for p in compiled.binds.values()):
                raise ValueError("Fast statements take no expanding parameters (use one_of)")
            own = dict(compiled.params)
            self._compiled = (compiled.string, tuple(compiled.positiontup or ()), own)
        return self._compiled


class Params:
    """Named parameters of hand-composed PostgreSQL text: `p("name")` is `$n`, the same n for the same
    name, so fragments written by different domains compose into one statement."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str) -> str:
        if name not in self.names:
            self.names.append(name)
        return f"${self.names.index(name) + 1}"

    def values(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]
