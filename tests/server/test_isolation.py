"""The per-test isolation itself (tests/isolation.py): what a test writes is gone afterwards, and the
server's transactions and autocommit blocks behave inside it as they do on a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from horde.server.db import Database, create_engine
from horde.server.kit.orm import table, utc
from horde.server.users.models import User
from tests import isolation

users = table(User)


def _user(name: str) -> dict[str, object]:
    now = utc(0.0)
    return {"username": name, "oauth_id": name, "api_key_hash": f"hash-{name}", "created_at": now,
            "last_active": now}  # fmt: skip


async def _count(db: Database) -> int:
    async with db.autocommit() as conn:
        return int(await conn.scalar(select(func.count()).select_from(users)) or 0)


async def _write_then_fail(db: Database) -> None:
    async with db.autocommit() as conn:
        await conn.execute(insert(users).values(**_user("before-failure")))
        raise RuntimeError("after the write")


async def test_rolled_back_database_leaves_nothing(postgres_url: str) -> None:
    await isolation.migrate_once(postgres_url)
    db = await isolation.RolledBackDatabase.open(postgres_url)
    async with db.unit() as conn:
        await conn.execute(insert(users).values(**_user("kept-in-test")))
    with pytest.raises(RuntimeError):  # not the database's failure: the write stays, as autocommit keeps it
        await _write_then_fail(db)
    with pytest.raises(IntegrityError):  # the database's: only this block is undone, the test goes on
        async with db.autocommit() as conn:
            await conn.execute(insert(users).values(**_user("kept-in-test")))
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await conn.execute(insert(users).values(**_user("kept-in-test")))
    assert await _count(db) == 3  # the anonymous user and the two written
    await db.dispose()
    plain = Database(engine=create_engine(postgres_url, pool_size=1), url=postgres_url)
    try:
        assert await _count(plain) == 1  # only the anonymous user: everything was rolled back
    finally:
        await plain.dispose()
