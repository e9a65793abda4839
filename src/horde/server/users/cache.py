"""Node-local cache from API key to the user it belongs to (short TTL: role changes apply quickly).

A key missing from the cache is looked up once however many requests ask for it at the same time
(`lookup`): when the entry of a busy worker owner expires, its workers' pops share one query instead of
each taking a pooled connection for the same row (issue 7, ADR 0013).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.db import Database
from horde.server.kit.cache import TTLCache
from horde.server.kit.clock import Clock
from horde.server.kit.orm import table
from horde.server.users.keys import hash_api_key
from horde.server.users.models import User
from horde.server.users.principal import Principal

users = table(User)


class UserCache:
    def __init__(self, *, pepper: str, admins: frozenset[int], clock: Clock, ttl: float = 10.0) -> None:
        self.pepper = pepper
        self.admins = admins
        self._by_hash: TTLCache[str, Principal | None] = TTLCache(ttl=ttl, maxsize=50_000, clock=clock.now)
        self._looking: dict[str, asyncio.Future[Principal | None]] = {}
        self._proxies: TTLCache[str, bool] = TTLCache(ttl=ttl, maxsize=10_000, clock=clock.now)
        self.lookups = 0  # database lookups started (the regression guard counts them)

    def cached(self, api_key: str) -> Principal | None:
        """The user owning `api_key` if this node knows it already (no database)."""
        return self._by_hash.get(hash_api_key(api_key, pepper=self.pepper))

    async def lookup(self, db: Database, api_key: str) -> Principal | None:
        """The user owning `api_key`: from the cache, else from one lookup shared by every caller
        asking for the same key meanwhile."""
        key_hash = hash_api_key(api_key, pepper=self.pepper)
        cached = self._by_hash.get(key_hash)
        if cached is not None:
            return cached
        looking = self._looking.get(key_hash)
        if looking is None:
            self.lookups += 1
            looking = self._looking[key_hash] = asyncio.ensure_future(self._fetch(db, api_key))
            looking.add_done_callback(lambda _: self._looking.pop(key_hash, None))
        return await asyncio.shield(looking)

    async def _fetch(self, db: Database, api_key: str) -> Principal | None:
        async with db.autocommit() as conn:
            return await self.by_key(conn, api_key)

    async def by_key(self, conn: AsyncConnection, api_key: str) -> Principal | None:
        """The user owning `api_key`, or None when no user has it."""
        key_hash = hash_api_key(api_key, pepper=self.pepper)
        cached = self._by_hash.get(key_hash)
        if cached is not None:
            return cached
        row = (await conn.execute(select(users).where(users.c.api_key_hash == key_hash))).first()
        principal = Principal.of(User(**row._mapping), admins=self.admins) if row else None
        if principal is not None:
            self._by_hash.put(key_hash, principal)
        return principal

    async def is_proxy_passkey(self, db: Database, passkey: str) -> bool:
        """Whether `passkey` is the proxy passkey of a (not deleted) service account."""
        key_hash = hash_api_key(passkey, pepper=self.pepper)
        known = self._proxies.get(key_hash)
        if known is None:
            async with db.autocommit() as conn:
                found = await conn.scalar(
                    select(users.c.id).where(
                        users.c.proxy_passkey_hash == key_hash,
                        users.c.service.is_(True),
                        users.c.deleted.is_(False),
                    )
                )
            known = found is not None
            self._proxies.put(key_hash, known)
        return known

    def forget_all(self) -> None:
        """Drop every entry (after a user's roles or key changed on this node)."""
        self._by_hash.clear()
        self._proxies.clear()
