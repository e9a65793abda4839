"""Spending through a shared key: admission, charges and their fold (SEMANTICS.md 8, ADR 0021).

Invariants: the owner pays every job through the kudos ledger as for their own requests; the key only
limits what its holders may spend. A request through a key inserts one charge of its quote, under the
key's advisory lock, after checking the key's remainder on committed charges (two requests through one
key cannot both spend its last kudos); a request that is then not queued inserts the opposite charge.
Charges are only inserted; `fold_charges` adds them into `shared_keys.utilized` and deletes them.
"""

from __future__ import annotations

import uuid
import zlib
from collections import defaultdict

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.kit.orm import table, utc
from horde.server.sharedkeys.models import SharedKey, SharedKeyCharge
from horde.server.sharedkeys.service import SharedKeyRow, shared_key_by_id
from horde.server.state import Horde
from horde.server.users.models import ANON_USER_ID
from horde.server.users.principal import Principal
from horde.server.users.service import get_user

keys = table(SharedKey)
charges = table(SharedKeyCharge)
_KEY_LOCKS = 0x53484B59  # "SHKY": the advisory-lock namespace of shared-key admission


def expired_error(*, status_code: int | None = None) -> HordeError:
    return HordeError(RC.SharedKeyExpired, "This shared key has expired", status_code=status_code)


def _empty() -> HordeError:
    return HordeError(RC.SharedKeyEmpty, "This shared key has no kudos left to spend")


def check_limits(key: SharedKeyRow, *, pixels: int, steps: int, tokens: int) -> None:
    """Refuse a job above the key's per-job pixel, step or token limits (400, as the reference)."""
    for limit, asked, what in (
        (key.max_image_pixels, pixels, "pixels"),
        (key.max_image_steps, steps, "steps"),
        (key.max_text_tokens, tokens, "tokens"),
    ):
        if limit != -1 and asked > limit:
            raise HordeError(RC.BadRequest, f"This shared key is limited to {limit} {what} per job")


def is_empty(key: SharedKeyRow) -> bool:
    return key.remaining == 0


async def owner_of(conn: AsyncConnection, key: SharedKeyRow, *, admins: frozenset[int]) -> Principal:
    """The user a key spends for (DeletedUser when they are deleted)."""
    user = await get_user(conn, key.user_id)
    if user is None or user.deleted:
        raise HordeError(RC.DeletedUser, "This user has been deleted")
    return Principal.of(user, admins=admins)


async def anonymous(conn: AsyncConnection, *, admins: frozenset[int]) -> Principal:
    """The anonymous user: whom an emptied key's holder falls back to with `allow_downgrade`."""
    user = await get_user(conn, ANON_USER_ID)
    assert user is not None
    return Principal.of(user, admins=admins)


async def _lock(conn: AsyncConnection, key_id: uuid.UUID) -> None:
    if conn.dialect.name == "postgresql":  # SQLite's one writer already serialises admissions
        signed = zlib.crc32(key_id.bytes) - (1 << 31)
        await conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": _KEY_LOCKS, "id": signed})


async def charge_shared_key(conn: AsyncConnection, *, key_id: uuid.UUID, amount: int, now: float) -> None:
    """Spend `amount` hundredths through a key, or raise: InvalidAPIKey (deleted), SharedKeyExpired,
    SharedKeyEmpty, SharedKeyInsufficientKudos. Takes the key's lock for the rest of the transaction.

    The one function other domains (a style's key) call to validate and charge a key."""
    await _lock(conn, key_id)
    key = await shared_key_by_id(conn, key_id)
    if key is None:
        raise HordeError(RC.InvalidAPIKey, "This shared key has been deleted")
    if key.expired(now):
        raise expired_error()
    remaining = key.remaining
    if remaining is not None and remaining <= 0:
        raise _empty()
    if remaining is not None and amount > remaining:
        raise HordeError(
            RC.SharedKeyInsufficientKudos,
            f"This shared key has {remaining / 100} kudos left, and this request needs {amount / 100}",
        )
    if amount:
        await conn.execute(insert(charges).values(key_id=key_id, amount=amount, created_at=utc(now)))


async def refund_shared_key(conn: AsyncConnection, *, key_id: uuid.UUID, amount: int, now: float) -> None:
    """Give back a charge whose request was not queued (an opposite charge)."""
    if amount:
        await conn.execute(insert(charges).values(key_id=key_id, amount=-amount, created_at=utc(now)))


async def raise_allowance(conn: AsyncConnection, *, key_id: uuid.UUID, amount: int) -> None:
    """A transfer to the key: its owner got `amount` hundredths, and the key may spend that much more."""
    await conn.execute(
        update(keys)
        .where(keys.c.id == key_id, keys.c.allowance.is_not(None))
        .values(allowance=keys.c.allowance + amount)
    )


async def fold_charges(conn: AsyncConnection, *, limit: int = 5000) -> int:
    """Take up to `limit` charges (oldest first), add them to their keys' `utilized` and delete them."""
    oldest = select(charges.c.id).order_by(charges.c.id).limit(limit).with_for_update(skip_locked=True)
    taken = await conn.execute(
        delete(charges)
        .where(charges.c.id.in_(oldest.scalar_subquery()))
        .returning(charges.c.key_id, charges.c.amount)
    )
    sums: defaultdict[uuid.UUID, int] = defaultdict(int)
    count = 0
    for key_id, amount in taken:
        sums[key_id] += int(amount)
        count += 1
    for key_id, amount in sorted(sums.items()):
        await conn.execute(update(keys).where(keys.c.id == key_id).values(utilized=keys.c.utilized + amount))
    return count


async def admit_key_holder(
    horde: Horde, key: SharedKeyRow, owner: Principal, *, usage: tuple[int, int, int], allow_downgrade: bool
) -> Principal:
    """Whom a request through `key` acts as: its owner, or (an emptied key with `allow_downgrade`)
    the anonymous user; refuses a job above the key's limits, or an emptied key otherwise."""
    pixels, steps, tokens = usage
    check_limits(key, pixels=pixels, steps=steps, tokens=tokens)
    if not is_empty(key):
        return owner
    if not allow_downgrade:
        raise _empty()
    async with horde.db.autocommit() as conn:
        return await anonymous(conn, admins=horde.users.admins)


async def spend_through_key(horde: Horde, key: SharedKeyRow, *, amount: int) -> None:
    """Charge a request's quote to the key, in a transaction of its own (see the module's invariants)."""
    async with horde.db.transaction() as conn:
        await charge_shared_key(conn, key_id=key.id, amount=amount, now=horde.clock.now())


async def give_back(horde: Horde, key: SharedKeyRow, *, amount: int) -> None:
    """Refund a charge whose request was then refused."""
    async with horde.db.transaction() as conn:
        await refund_shared_key(conn, key_id=key.id, amount=amount, now=horde.clock.now())
