"""This node's copy of the active worker messages: a pop finds its worker's messages without a query.

The copy is read by one query, again at most every `max_age` seconds (in the background once a copy
exists, so no pop waits for it); a message written or deleted on this node drops the copy at once
(`forget`), other nodes see the change within `max_age`. ADR 0016.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from horde.server.db import Database
from horde.server.kit.clock import Clock
from horde.server.kit.orm import table, utc
from horde.server.messages.models import WorkerMessage

log = logging.getLogger(__name__)
messages = table(WorkerMessage)

MAX_AGE = 5.0  # seconds before the copy is read again
MAX_ACTIVE = 10_000  # the newest active messages the copy holds
PER_POP = 20  # the newest messages one pop carries


@dataclass(frozen=True, slots=True)
class _Message:
    expires_at: float
    body: dict[str, Any]  # as the pop answers it (ResponseModelMessagePop)


@dataclass(frozen=True, slots=True)
class _Copy:
    taken_at: float
    broadcasts: tuple[_Message, ...] = ()
    by_worker: dict[uuid.UUID, tuple[_Message, ...]] = field(default_factory=dict)


class MessageBoard:
    """The active messages by worker (newest first), and the broadcasts."""

    def __init__(self, db: Database, clock: Clock, *, max_age: float = MAX_AGE) -> None:
        self._db = db
        self._clock = clock
        self._max_age = max_age
        self._copy: _Copy | None = None
        self._reading: asyncio.Task[_Copy] | None = None
        self._generation = 0  # bumped by `forget`: a read begun before it is not kept

    async def for_worker(self, worker_id: uuid.UUID) -> list[dict[str, Any]]:
        """The active messages a pop of this worker carries (its own and the broadcasts)."""
        copy = self._copy
        now = self._clock.now()
        if copy is None:
            copy = await asyncio.shield(self._read())
        elif now - copy.taken_at >= self._max_age:
            self._read()  # in the background: this pop answers from the copy it has
        own = copy.by_worker.get(worker_id, ())
        if not own and not copy.broadcasts:
            return []
        found = [m for m in (*own, *copy.broadcasts) if m.expires_at > now]
        found.sort(key=lambda m: m.expires_at, reverse=True)
        return [m.body for m in found[:PER_POP]]

    def forget(self) -> None:
        """Drop the copy (a message was written or deleted on this node)."""
        self._copy = None
        self._generation += 1

    def _read(self) -> asyncio.Task[_Copy]:
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._load(self._generation))
            self._reading.add_done_callback(_quiet)
        return self._reading

    async def _load(self, generation: int) -> _Copy:
        now = self._clock.now()
        statement = (
            select(messages.c.id, messages.c.worker_id, messages.c.message, messages.c.origin,
                   messages.c.expires_at)
            .where(messages.c.expires_at > utc(now))
            .order_by(messages.c.created_at.desc())
            .limit(MAX_ACTIVE)
        )  # fmt: skip
        async with self._db.autocommit() as conn:
            rows = (await conn.execute(statement)).all()
        broadcasts: list[_Message] = []
        by_worker: dict[uuid.UUID, list[_Message]] = {}
        for row in rows:
            body = {"id": str(row.id), "message": row.message, "expiry": row.expires_at.isoformat()}
            if row.origin is not None:
                body["origin"] = row.origin
            message = _Message(row.expires_at.timestamp(), body)
            if row.worker_id is None:
                broadcasts.append(message)
            else:
                by_worker.setdefault(row.worker_id, []).append(message)
        copy = _Copy(now, tuple(broadcasts), {w: tuple(found) for w, found in by_worker.items()})
        if generation == self._generation:
            self._copy = copy
        return copy


def _quiet(reading: asyncio.Task[_Copy]) -> None:
    """A background read that failed: the copy stays as it was, the next pop past max_age tries again."""
    if not reading.cancelled() and reading.exception() is not None:
        log.warning("worker message board read failed: %s", reading.exception())
