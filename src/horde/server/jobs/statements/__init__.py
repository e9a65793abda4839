"""The job lifecycle's statements, one implementation per dialect behind `JobStatements` (ADR 0011)."""

from horde.server.db import Database
from horde.server.jobs.statements.base import (
    Completion,
    Faulted,
    Hook,
    JobStatements,
    NewRow,
    Queued,
    priority_key,
)
from horde.server.jobs.statements.postgresql import PostgresStatements
from horde.server.jobs.statements.sqlite import SqliteStatements


def statements_for(db: Database) -> JobStatements:
    """The statement layer of the database's dialect (chosen once, at start-up)."""
    return SqliteStatements(db) if db.is_sqlite else PostgresStatements(db)


__all__ = [
    "Completion", "Faulted", "Hook", "JobStatements", "NewRow", "Queued", "priority_key", "statements_for",
]  # fmt: skip
