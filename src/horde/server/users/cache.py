"""Node-local cache from API key to the user it belongs to (short TTL: role changes apply quickly)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

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

    def cached(self, api_key: str) -> Principal | None:
        """The user owning `api_key` if this node knows it already (no database)."""
        return self._by_hash.get(hash_api_key(api_key, pepper=self.pepper))

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

    def forget_all(self) -> None:
        """Drop every entry (after a user's roles or key changed on this node)."""
        self._by_hash.clear()
