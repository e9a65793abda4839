"""An empty database upgraded to head matches the models exactly, on both dialects."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
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
