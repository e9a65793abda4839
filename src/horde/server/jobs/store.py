"""Request rows by id, kept per node: their fields never change after insert."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.jobs.models import Job, Request, RequestModel, RequestWorker
from horde.server.jobs.records import RequestRow
from horde.server.jobs.statements import JobStatements
from horde.server.kit.cache import TTLCache
from horde.server.kit.clock import Clock
from horde.server.kit.orm import table

jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)
request_workers = table(RequestWorker)


class RequestCache:
    """Request rows by id: their fields never change after insert, so a node may keep them."""

    def __init__(self, clock: Clock, statements: JobStatements) -> None:
        self._cache: TTLCache[uuid.UUID, RequestRow] = TTLCache(ttl=600, maxsize=20_000, clock=clock.now)
        self._statements = statements

    async def get(self, conn: AsyncConnection, request_id: uuid.UUID) -> RequestRow | None:
        row = self._cache.get(request_id)
        if row is None:
            row = await self._statements.load_request(conn, request_id)
            if row is not None:
                self._cache.put(request_id, row)
        return row

    def cached(self, request_id: uuid.UUID) -> RequestRow | None:
        return self._cache.get(request_id)

    def remember(self, row: RequestRow) -> None:
        """A request this node just stored: its first pop here needs no database read."""
        self._cache.put(row.id, row)
