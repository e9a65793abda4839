"""Which API processes are running on the shared database, and whether they can work together.

Every node keeps a row in `server_nodes` while it runs, saying where it keeps objects. A node that
would store objects somewhere another live node cannot read (a local directory of its own beside any
other node) refuses to start: an image uploaded through one node must be readable through every node.
On SQLite there is one process by construction (db.py's file lock), so nothing is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
import zlib
from collections.abc import AsyncIterator

from sqlalchemy import delete, select, text, update

from horde.server.cluster.models import ServerNode
from horde.server.db import Database
from horde.server.kit.clock import Clock
from horde.server.kit.orm import table, utc

log = logging.getLogger(__name__)
_NODES = table(ServerNode)
_JOIN_LOCK = zlib.crc32(b"horde:server_nodes")


class NodeConflict(RuntimeError):
    """This node's object storage is not the one the other running nodes use."""


class NodeRegistry:
    """This process's row in `server_nodes`: joined at start, refreshed while alive, left at stop."""

    def __init__(self, db: Database, clock: Clock, *, storage: str, ttl: float = 60.0) -> None:
        self.db = db
        self.clock = clock
        self.storage = storage
        self.ttl = ttl  # a node not seen for this long is taken for dead
        self.id = uuid.uuid4().hex
        self._beat: asyncio.Task[None] | None = None

    async def join(self) -> None:
        """Record this node, or raise NodeConflict when a live node stores objects elsewhere."""
        if self.db.is_sqlite:
            return
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _JOIN_LOCK})
            await conn.execute(delete(_NODES).where(_NODES.c.seen_at < utc(now - self.ttl)))
            others = (
                await conn.execute(
                    select(_NODES.c.host, _NODES.c.pid, _NODES.c.storage).where(
                        _NODES.c.storage != self.storage
                    )
                )
            ).all()
            if others:
                raise NodeConflict(_conflict_message(self.storage, [tuple(row) for row in others]))
            await conn.execute(
                _NODES.insert().values(
                    id=self.id, host=socket.gethostname()[:255], pid=os.getpid(),
                    storage=self.storage, started_at=utc(now), seen_at=utc(now),
                )
            )  # fmt: skip
        self._beat = asyncio.create_task(self._keep_alive(), name="node-heartbeat")

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                async with self.db.transaction() as conn:
                    await conn.execute(
                        update(_NODES).where(_NODES.c.id == self.id).values(seen_at=self.clock.utcnow())
                    )
            except Exception as exc:  # the database may be briefly away; the next beat retries
                log.warning("could not refresh this node's registration: %s", exc)

    async def leave(self) -> None:
        if self._beat is None:
            return
        self._beat.cancel()
        await asyncio.gather(self._beat, return_exceptions=True)
        self._beat = None
        with contextlib.suppress(Exception):  # a node that cannot say goodbye simply times out
            async with self.db.transaction() as conn:
                await conn.execute(delete(_NODES).where(_NODES.c.id == self.id))


def _conflict_message(mine: str, others: list[tuple[object, ...]]) -> str:
    where = ", ".join(f"{host} (pid {pid}) on {storage}" for host, pid, storage in others)
    return (
        f"this node would keep objects in {mine}, but running nodes use another store: {where}. "
        "Give every node the same S3 settings (HORDE_S3_*), or the same shared data directory "
        "(network storage every node mounts)."
    )


@contextlib.asynccontextmanager
async def registered(db: Database, clock: Clock, *, storage: str) -> AsyncIterator[NodeRegistry]:
    """This process as a node for as long as the block runs (NodeConflict when it cannot be one)."""
    registry = NodeRegistry(db, clock, storage=storage)
    await registry.join()
    try:
        yield registry
    finally:
        await registry.leave()
