"""The secrets every API node must agree on, so a node needs nothing but the shared services.

A secret comes from settings when set. Otherwise, on PostgreSQL (a database several nodes may share)
it lives in `server_secrets`: the first node to start inserts it and every other node reads the same
row (the primary key serialises concurrent first starts, so exactly one value wins). On SQLite, which
one process owns, it stays a file in the data dir as before.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from horde.server.cluster.models import ServerSecret
from horde.server.config import Settings
from horde.server.db import Database
from horde.server.kit.clock import Clock
from horde.server.kit.orm import table
from horde.server.kit.secrets import derive, load_or_create

log = logging.getLogger(__name__)
_SECRETS = table(ServerSecret)

PEPPER = "api_key_pepper"
URL_SIGNING = "url_signing_key"


@dataclass(frozen=True)
class NodeSecrets:
    pepper: str  # of the API-key hashes
    url_signing: bytes  # key of the storage URLs the horde signs itself


async def load_secrets(db: Database, settings: Settings, *, clock: Clock | None = None) -> NodeSecrets:
    """The pepper and the URL-signing key this node must share with every other node."""
    clock = clock or Clock()
    pepper = await shared_secret(
        db, PEPPER, configured=settings.api_key_pepper, data_dir=settings.data_dir, clock=clock
    )
    signing = await shared_secret(
        db, URL_SIGNING, configured=settings.url_signing_secret, data_dir=settings.data_dir, clock=clock
    )
    return NodeSecrets(pepper=pepper, url_signing=derive(signing, "urls"))


async def shared_secret(db: Database, name: str, *, configured: str, data_dir: Path, clock: Clock) -> str:
    """The configured value; else the database's (created once); on SQLite, the data dir's."""
    if configured:
        return configured
    if db.is_sqlite:
        return load_or_create(data_dir, name)
    # A node that ran before secrets moved into the database kept its pepper on disk: the first node
    # to start after the upgrade publishes that one, so keys minted earlier keep working.
    legacy = data_dir / "secrets" / name
    candidate = legacy.read_text().strip() if legacy.is_file() else secrets.token_hex(32)
    async with db.transaction() as conn:
        await conn.execute(
            insert(_SECRETS)
            .values(name=name, value=candidate, created_at=clock.utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = await conn.scalar(select(_SECRETS.c.value).where(_SECRETS.c.name == name))
    assert isinstance(value, str)
    if legacy.is_file() and value != candidate:
        log.warning("%s in %s differs from the shared database's; using the database's", name, legacy)
    return value
