"""Moderator prompt filters: list, add, change, delete (SEMANTICS.md 1.10).

Invariants: every stored regex compiled and passed the backtracking probes when it was written; every
write bumps `filter_versions` in its own transaction, so each node's compiled set (filters/cache.py)
follows within its refresh interval, and at once on the writing node and, through Redis, on the others.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import FilterDetails, FilterRegex, PatchExistingFilter, PutNewFilter, SimpleResponse
from horde.contract.rc import RC
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.filters.models import Filter, FilterVersion
from horde.server.filters.regexes import BadRegex, FilterSet, check_filter
from horde.server.kit.orm import table
from horde.server.users.models import User
from horde.server.users.principal import Principal

filters = table(Filter)
versions = table(FilterVersion)
users = table(User)

FILTER_TYPES = range(10, 30)  # the types a filter may have (PutNewFilter's bounds)


def _details(row: Any) -> FilterDetails:
    return FilterDetails(
        id=str(row.id), regex=row.regex, filter_type=row.filter_type, description=row.description,
        replacement=row.replacement or "", user=f"{row.username}#{row.user_id}",
    )  # fmt: skip


def _with_user() -> Any:
    return select(filters, users.c.username).join(users, users.c.id == filters.c.user_id)


async def _validate(pattern: str, *, timeout: float) -> None:
    try:
        await asyncio.to_thread(check_filter, pattern, timeout=timeout)
    except BadRegex as exc:
        raise HordeError(RC.BadRequest, str(exc)) from None


async def _bump(conn: AsyncConnection, on_change: Callable[[], None]) -> None:
    done = await conn.execute(
        update(versions).where(versions.c.id == 1).values(version=versions.c.version + 1)
    )
    if not done.rowcount:
        await conn.execute(insert(versions).values(id=1, version=1))
    after_commit(conn, on_change)


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise HordeError(RC.FilterNotFound, f"Filter with ID '{raw}' not found") from None


async def list_filters(
    conn: AsyncConnection, *, filter_type: int | None, contains: str | None
) -> list[FilterDetails]:
    """Every filter, of one type and/or whose regex contains a word."""
    query = _with_user().order_by(filters.c.filter_type, filters.c.created_at)
    if filter_type is not None:
        if filter_type not in FILTER_TYPES:  # no such filter (and no integer overflow in the query)
            return []
        query = query.where(filters.c.filter_type == filter_type)
    if contains:
        query = query.where(filters.c.regex.contains(contains, autoescape=True))
    return [_details(row) for row in await conn.execute(query)]


async def get_filter(conn: AsyncConnection, *, raw_id: str) -> FilterDetails:
    """One filter, or 404 FilterNotFound."""
    row = (await conn.execute(_with_user().where(filters.c.id == _parse_id(raw_id)))).first()
    if row is None:
        raise HordeError(RC.FilterNotFound, f"Filter with ID '{raw_id}' not found")
    return _details(row)


async def put_filter(
    conn: AsyncConnection,
    *,
    actor: Principal,
    body: PutNewFilter,
    now: datetime,
    timeout: float,
    on_change: Callable[[], None],
) -> FilterDetails:
    """Add a filter; the same (regex, filter_type) again answers the existing one."""
    await _validate(body.regex, timeout=timeout)
    same = (filters.c.regex == body.regex) & (filters.c.filter_type == body.filter_type)
    existing = (await conn.execute(select(filters.c.id).where(same))).scalar()
    if existing is None:
        existing = uuid.uuid4()
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(filters).values(
                        id=existing,
                        regex=body.regex,
                        filter_type=body.filter_type,
                        description=body.description,
                        replacement=body.replacement,
                        user_id=actor.id,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:  # the same filter, added at the same moment by another moderator
            existing = (await conn.execute(select(filters.c.id).where(same))).scalar_one()
        else:
            await _bump(conn, on_change)
    return await get_filter(conn, raw_id=str(existing))


async def patch_filter(
    conn: AsyncConnection,
    *,
    actor: Principal,
    raw_id: str,
    body: PatchExistingFilter,
    now: datetime,
    timeout: float,
    on_change: Callable[[], None],
) -> FilterDetails:
    """Change some fields of a filter (the moderator becomes its `user`)."""
    filter_id = _parse_id(raw_id)
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise HordeError(RC.NoFilterModSelected, "No filter modification selected!")
    if "regex" in changes:
        await _validate(changes["regex"], timeout=timeout)
    try:
        async with conn.begin_nested():
            done = await conn.execute(
                update(filters)
                .where(filters.c.id == filter_id)
                .values(**changes, user_id=actor.id, updated_at=now)
            )
    except IntegrityError:
        raise HordeError(RC.BadRequest, "A filter with this regex and type exists already") from None
    if not done.rowcount:
        raise HordeError(RC.FilterNotFound, f"Filter with ID '{raw_id}' not found")
    await _bump(conn, on_change)
    return await get_filter(conn, raw_id=raw_id)


async def delete_filter(
    conn: AsyncConnection, *, raw_id: str, on_change: Callable[[], None]
) -> SimpleResponse:
    """Delete a filter."""
    done = await conn.execute(delete(filters).where(filters.c.id == _parse_id(raw_id)))
    if not done.rowcount:
        raise HordeError(RC.FilterNotFound, f"Filter with ID '{raw_id}' not found")
    await _bump(conn, on_change)
    return SimpleResponse(message="OK")


def filter_regexes(current: FilterSet, *, filter_type: int | None) -> list[FilterRegex]:
    """The OR-joined regex of each type (of one type when asked), as this node matches them."""
    return [
        FilterRegex(filter_type=t, regex=source)
        for t, source in current.sources.items()
        if filter_type is None or t == filter_type
    ]


async def load_filter_set(conn: AsyncConnection) -> FilterSet:
    """The current filters, compiled, with the version they are at."""
    version = (await conn.execute(select(versions.c.version).where(versions.c.id == 1))).scalar() or 0
    rows = await conn.execute(
        select(filters.c.filter_type, filters.c.regex, filters.c.replacement).order_by(filters.c.created_at)
    )
    data = [(r.filter_type, r.regex, r.replacement or "") for r in rows]
    return await asyncio.to_thread(FilterSet.build, version, data)


async def current_version(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(versions.c.version).where(versions.c.id == 1))).scalar() or 0)
