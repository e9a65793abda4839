"""Shared keys as their owners manage them and as the API resolves them (SEMANTICS.md 1.11, ADR 0021).

Invariants: a key's secret (the id a client sends as `apikey`) is stored only as its peppered hash, so
nobody, its owner included, can read it back after creation; a user holds at most their role's number of
keys; only the owner changes or deletes a key; what a key has spent is the folded `utilized` plus its
unfolded charges (`spending.py`), never a counter a request updates.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import SharedKeyDetails, SharedKeyInput, SharedKeyPatch, SimpleResponse
from horde.contract.rc import RC
from horde.server import access
from horde.server.errors import HordeError
from horde.server.kit.orm import table, utc
from horde.server.sharedkeys.models import SharedKey, SharedKeyCharge
from horde.server.state import Horde
from horde.server.users.keys import hash_api_key
from horde.server.users.models import User
from horde.server.users.principal import Principal

keys = table(SharedKey)
charges = table(SharedKeyCharge)
users = table(User)

DAY = 86400
TRUSTED_KEYS, EDUCATION_KEYS, PLAIN_KEYS = 10, 1000, 3  # per-user caps by role (SEMANTICS.md 1.11)
UNLIMITED = -1


@dataclass(frozen=True, slots=True)
class SharedKeyRow:
    """A stored key, with what it has spent so far (folded and unfolded charges), in hundredths."""

    id: uuid.UUID  # internal: what other tables (a style's `sharedkey_id`) refer to
    user_id: int
    username: str
    name: str | None
    allowance: int | None  # None: unlimited
    spent: int
    expiry: datetime | None
    max_image_pixels: int
    max_image_steps: int
    max_text_tokens: int

    @property
    def remaining(self) -> int | None:
        """Hundredths left to spend (never below 0), None when unlimited."""
        return None if self.allowance is None else max(self.allowance - self.spent, 0)

    def expired(self, now: float) -> bool:
        return self.expiry is not None and self.expiry.timestamp() <= now

    def details(self, shown_id: str) -> SharedKeyDetails:
        remaining = self.remaining
        return SharedKeyDetails(
            id=shown_id, username=f"{self.username}#{self.user_id}", name=self.name or "",
            kudos=UNLIMITED if remaining is None else remaining // 100, expiry=self.expiry,
            utilized=self.spent // 100, max_image_pixels=self.max_image_pixels,
            max_image_steps=self.max_image_steps, max_text_tokens=self.max_text_tokens,
        )  # fmt: skip


def looks_like_key(raw: str) -> bool:
    """Whether `raw` has a shared key's form (a UUID; user keys never have it)."""
    try:
        uuid.UUID(raw)
    except ValueError:
        return False
    return True


def _hash(pepper: str, raw: str) -> str:
    return hash_api_key(str(uuid.UUID(raw)), pepper=pepper)


_SPENT = (
    select(func.coalesce(func.sum(charges.c.amount), 0))
    .where(charges.c.key_id == keys.c.id)
    .scalar_subquery()
)
_SELECT = select(keys, users.c.username, _SPENT.label("unfolded")).join(users, users.c.id == keys.c.user_id)


def _row(found: Mapping[str, Any]) -> SharedKeyRow:
    return SharedKeyRow(
        id=found["id"], user_id=found["user_id"], username=found["username"], name=found["name"],
        allowance=found["allowance"], spent=int(found["utilized"]) + int(found["unfolded"] or 0),
        expiry=found["expiry"], max_image_pixels=found["max_image_pixels"],
        max_image_steps=found["max_image_steps"], max_text_tokens=found["max_text_tokens"],
    )  # fmt: skip


async def find_shared_key(conn: AsyncConnection, *, pepper: str, raw_key: str) -> SharedKeyRow | None:
    """The key whose secret is `raw_key` (as a client sends it), or None; `pepper`: horde.users.pepper."""
    if not looks_like_key(raw_key):
        return None
    found = (await conn.execute(_SELECT.where(keys.c.key_hash == _hash(pepper, raw_key)))).first()
    return _row(dict(found._mapping)) if found else None


async def shared_key_by_id(conn: AsyncConnection, key_id: uuid.UUID) -> SharedKeyRow | None:
    """The key with this internal id (what another table stores), or None."""
    found = (await conn.execute(_SELECT.where(keys.c.id == key_id))).first()
    return _row(dict(found._mapping)) if found else None


async def _known(conn: AsyncConnection, horde: Horde, raw_id: str) -> SharedKeyRow:
    found = await find_shared_key(conn, pepper=horde.users.pepper, raw_key=raw_id)
    if found is None:  # the reference answers an unknown key as an unknown API key (SEMANTICS.md 1.11)
        raise HordeError(RC.InvalidAPIKey, "No shared key found with this ID")
    return found


def key_cap(user: Principal) -> int:
    """How many shared keys a user may hold."""
    if user.education:
        return EDUCATION_KEYS
    return TRUSTED_KEYS if user.is_trusted else PLAIN_KEYS


def _expiry(days: int, now: float) -> datetime | None:
    return None if days == UNLIMITED else utc(now + days * DAY)


def _allowance(kudos: int, spent: int) -> int | None:
    return None if kudos == UNLIMITED else kudos * 100 + spent


async def create_shared_key(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, body: SharedKeyInput
) -> SharedKeyDetails:
    """A new key of the caller's; its secret is in the answer's `id`, and only there."""
    held = await conn.scalar(select(func.count()).select_from(keys).where(keys.c.user_id == actor.id))
    cap = key_cap(actor)
    if int(held or 0) >= cap:
        raise HordeError(RC.Forbidden, f"You cannot have more than {cap} shared keys")
    secret, now = str(uuid.uuid4()), horde.clock.now()
    key_id = uuid.uuid4()
    await conn.execute(
        insert(keys).values(
            id=key_id, key_hash=_hash(horde.users.pepper, secret), user_id=actor.id, name=body.name,
            allowance=_allowance(body.kudos, 0), utilized=0, expiry=_expiry(body.expiry, now),
            max_image_pixels=body.max_image_pixels, max_image_steps=body.max_image_steps,
            max_text_tokens=body.max_text_tokens, created_at=utc(now),
        )
    )  # fmt: skip
    created = await shared_key_by_id(conn, key_id)
    assert created is not None
    return created.details(secret)


async def get_shared_key(conn: AsyncConnection, *, horde: Horde, raw_id: str) -> SharedKeyDetails:
    """A key by its secret id (anyone holding it may look)."""
    return (await _known(conn, horde, raw_id)).details(raw_id)


async def modify_shared_key(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str, body: SharedKeyPatch
) -> SharedKeyDetails:
    """Change a key (its owner): a new `kudos` is what is left to spend from now on."""
    found = await _known(conn, horde, raw_id)
    access.admit(access.CHANGE_SHARED_KEY, actor, owner_id=found.user_id)
    values: dict[str, Any] = body.model_dump(exclude_none=True, exclude={"kudos", "expiry"})
    if body.kudos is not None:
        values["allowance"] = _allowance(body.kudos, found.spent)
    if body.expiry is not None:
        values["expiry"] = _expiry(body.expiry, horde.clock.now())
    if not values:
        raise HordeError(RC.NoSharedKeyModSelected, "No shared key modification selected!")
    await conn.execute(update(keys).where(keys.c.id == found.id).values(**values))
    changed = await shared_key_by_id(conn, found.id)
    assert changed is not None
    return changed.details(raw_id)


async def delete_shared_key(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str
) -> SimpleResponse:
    """Delete a key (its owner); requests it already queued stay billed to the owner."""
    found = await _known(conn, horde, raw_id)
    access.admit(access.CHANGE_SHARED_KEY, actor, owner_id=found.user_id)
    await conn.execute(delete(keys).where(keys.c.id == found.id))
    await conn.execute(delete(charges).where(charges.c.key_id == found.id))
    return SimpleResponse(message="OK")
