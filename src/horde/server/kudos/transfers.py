"""Kudos movements between people: transfers, awards and admin adjustments (SEMANTICS.md 4.6, ADR 0015).

Invariants: every movement is postings through `kudos.service.post` (each event sums to zero; a
transfer is two events through `system:transfer`, so the sender's side counts as `gifted`/`donated` and
the recipient's as `received`); a transfer is admitted under the advisory locks of both people (lower
id first), so its available-kudos check, its transfer-back window and its idempotency key are decided
on committed facts; a transfer with an `Idempotency-Key` is applied at most once per sender and key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import exists, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.kit.orm import table, utc
from horde.server.kudos import service as kudos
from horde.server.kudos.records import KudosTransfer
from horde.server.sharedkeys.service import SharedKeyRow, find_shared_key
from horde.server.sharedkeys.spending import expired_error, raise_allowance
from horde.server.users import service as users
from horde.server.users.models import User
from horde.server.users.principal import Principal

transfers = table(KudosTransfer)

TRANSFER_BACK_SECONDS = 60
MAX_IDEMPOTENCY_KEY = 255
MAX_MOVEMENT = 10**12  # whole kudos: keeps hundredths far inside BIGINT, whatever a caller sends
# the advisory-lock namespace of per-user kudos admission ("KUD0"); horde_queue_request takes it for holds
_PAYER_LOCKS = 0x4B554430


@dataclass(frozen=True, slots=True)
class Transferred:
    amount: int  # whole kudos
    replayed: bool


def _refuse(rc: RC, message: str) -> HordeError:
    # every rc of a transfer or an award is a 400 there, even those that are 403 elsewhere
    return HordeError(rc, message, status_code=400)


async def lock_users(conn: AsyncConnection, *user_ids: int) -> None:
    """Take the transaction-level admission lock of each user, lowest id first (no deadlock between
    two movements in opposite directions). SQLite's writer lock already serialises its writes."""
    if conn.dialect.name != "postgresql":
        return
    for user_id in sorted(set(user_ids)):
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": _PAYER_LOCKS, "id": user_id}
        )


async def available_kudos(conn: AsyncConnection, user: User | Principal) -> int:
    """What a user may give away, in hundredths: the balance less the floor and the upfront holds
    (SEMANTICS.md 4.4)."""
    return await kudos.available_of(conn, user.id, floor=kudos.user_floor(user.id, user.oauth_id))


def _check_amount(amount: int) -> None:
    if amount < 0:
        raise _refuse(RC.NegativeKudosTransfer, "Nice try...")
    if amount == 0:
        raise _refuse(RC.InvalidKudosTransferAmount, "The amount of kudos to transfer must be positive")


async def _target(conn: AsyncConnection, username: str, *, rc: RC) -> User:
    """The user an alias `name#id` names, by its id (names can change); anything else is an unknown
    user, as the reference answers one."""
    raw = username.rsplit("#", 1)[-1].strip() if "#" in username else ""
    user = await users.get_user(conn, int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
    if user is None:
        raise _refuse(rc, "Invalid target username.")
    return user


async def _key_target(
    conn: AsyncConnection, username: str, *, pepper: str, now: float
) -> SharedKeyRow | None:
    """The shared key `username` is, if it is one (an expired one is refused)."""
    key = await find_shared_key(conn, pepper=pepper, raw_key=username.strip())
    if key is not None and key.expired(now):
        raise expired_error(status_code=400)
    return key


def _check_people(sender: Principal, target: User) -> None:
    if target.id == sender.id:
        raise _refuse(RC.KudosTransferToSelf, "You cannot send kudos to yourself, you monkey!")
    if target.is_anon:
        raise _refuse(RC.KudosTransferToAnon, "You cannot transfer Kudos to Anonymous, you monkey!")
    if target.deleted:
        raise _refuse(RC.DeletedUser, "This user has been deleted")
    if sender.flagged:
        raise _refuse(RC.SourceAccountFlagged, "Your account has been flagged: you cannot send kudos")
    if target.flagged:
        raise _refuse(RC.TargetAccountFlagged, "The target account has been flagged: it cannot receive kudos")
    if sender.education:
        raise _refuse(RC.EducationCannotSendKudos, "Education accounts cannot send kudos")


async def _replay(
    conn: AsyncConnection, sender: Principal, key: str, target: User, amount: int
) -> Transferred | None:
    row = (
        await conn.execute(
            select(transfers.c.recipient_id, transfers.c.amount).where(
                transfers.c.sender_id == sender.id, transfers.c.idempotency_key == key
            )
        )
    ).first()
    if row is None:
        return None
    if (row.recipient_id, row.amount) != (target.id, amount):
        raise _refuse(RC.IdempotencyKeyConflict, "This Idempotency-Key was used for another transfer")
    return Transferred(amount=amount, replayed=True)


async def _sent_back_too_fast(conn: AsyncConnection, sender: Principal, target: User, now: float) -> bool:
    since = utc(now - TRANSFER_BACK_SECONDS)
    recent = exists().where(
        transfers.c.sender_id == target.id,
        transfers.c.recipient_id == sender.id,
        transfers.c.created_at > since,
    )
    return bool(await conn.scalar(select(recent)))


async def transfer_kudos(
    conn: AsyncConnection,
    *,
    sender: Principal,
    username: str,
    amount: int,
    idempotency_key: str | None,
    now: float,
    pepper: str = "",
) -> Transferred:
    """Move `amount` whole kudos from the sender to the user `username` names, or to the owner of the
    shared key it is, whose limit grows by as much (SEMANTICS.md 4.6; `pepper`: horde.users.pepper)."""
    if sender.is_anon:
        raise _refuse(RC.KudosTransferFromAnon, "You cannot transfer Kudos from Anonymous, smart-ass.")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise HordeError(RC.BadRequest, f"An Idempotency-Key has 1 to {MAX_IDEMPOTENCY_KEY} characters")
    _check_amount(amount)
    key = await _key_target(conn, username, pepper=pepper, now=now)
    target = await _target(conn, f"#{key.user_id}" if key else username, rc=RC.InvalidTargetUsername)
    _check_people(sender, target)
    await lock_users(conn, sender.id, target.id)
    if idempotency_key is not None and (done := await _replay(conn, sender, idempotency_key, target, amount)):
        return done
    if await _sent_back_too_fast(conn, sender, target, now):
        raise _refuse(RC.TooFastKudosTransfers, "You cannot transfer kudos back this soon")
    if amount * 100 > await available_kudos(conn, sender):
        raise _refuse(RC.KudosTransferNotEnough, "Not enough kudos.")
    transfer_id = await conn.scalar(
        insert(transfers)
        .values(
            sender_id=sender.id, recipient_id=target.id, amount=amount, idempotency_key=idempotency_key,
            created_at=utc(now),
        )
        .returning(transfers.c.id)
    )  # fmt: skip
    ref, value = f"transfer:{transfer_id}", amount * 100
    given = "donated" if target.education else "gifted"
    await kudos.post(
        conn, legs=[kudos.Leg(-value, user_id=sender.id), kudos.Leg(value, system="transfer")],
        reason=given, ref=ref, now=now,
    )  # fmt: skip
    await kudos.post(
        conn, legs=[kudos.Leg(-value, system="transfer"), kudos.Leg(value, user_id=target.id)],
        reason="received", ref=ref, now=now,
    )  # fmt: skip
    if key is not None:
        await raise_allowance(conn, key_id=key.id, amount=value)
    return Transferred(amount=amount, replayed=False)


async def award_kudos(conn: AsyncConnection, *, username: str, amount: int, now: float) -> int:
    """New kudos for the user `username` names, from `system:award` (the caller passed the door)."""
    _check_amount(amount)
    target = await _target(conn, username, rc=RC.InvalidAwardUsername)
    if target.is_anon:
        raise _refuse(RC.KudosAwardToAnon, "You cannot award Kudos to Anonymous, you monkey!")
    if target.deleted:
        raise _refuse(RC.DeletedUser, "This user has been deleted")
    if amount > MAX_MOVEMENT:
        raise _refuse(RC.KudosValidationError, f"At most {MAX_MOVEMENT} kudos can be awarded at once")
    value = amount * 100
    await kudos.post(
        conn, legs=[kudos.Leg(value, user_id=target.id), kudos.Leg(-value, system="award")],
        reason="awarded", now=now,
    )  # fmt: skip
    return amount


async def adjust_kudos(conn: AsyncConnection, *, user_id: int, delta: float, now: float) -> float:
    """An admin's change of a user's balance by `delta` kudos; the new balance in kudos."""
    if not (math.isfinite(delta) and abs(delta) <= MAX_MOVEMENT):
        raise HordeError(RC.KudosValidationError, f"An adjustment is at most {MAX_MOVEMENT} kudos")
    value = round(delta * 100)
    await kudos.post(
        conn, legs=[kudos.Leg(value, user_id=user_id), kudos.Leg(-value, system="admin")],
        reason="admin", now=now,
    )  # fmt: skip
    return await kudos.balance_of(conn, user_id) / 100
