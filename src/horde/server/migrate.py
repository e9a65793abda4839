"""Bring a database to the newest migration, once, under a lock (safe with several nodes starting)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from horde.server.db import Database, hold_lock, release_lock

_MIGRATION_LOCK = 0x686F726465  # "horde"


def _script_location() -> Path:
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    return config


def _upgrade(connection: Connection, config: Config) -> None:
    # The lock is the session's; the migrations must commit before it is released, or a node that was
    # waiting for it finds no alembic_version yet and runs the whole chain again (seen in CI: two nodes
    # started on an empty database, the second failed on the first migration's tables).
    hold_lock(connection, _MIGRATION_LOCK)
    connection.commit()
    try:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        release_lock(connection, _MIGRATION_LOCK)
        connection.commit()


async def upgrade_to_head(db: Database) -> None:
    """Apply every pending migration."""
    config = alembic_config()
    async with db.engine.connect() as conn:
        await conn.run_sync(_upgrade, config)


def _current(connection: Connection) -> tuple[str | None, str | None]:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return MigrationContext.configure(connection).get_current_revision(), head


async def is_at_head(db: Database) -> bool:
    """True when the schema is at the newest migration."""
    async with db.engine.connect() as conn:
        current, head = await conn.run_sync(_current)
    return current == head
