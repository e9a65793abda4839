"""Kudos postings and balances.

Invariants: the postings of one event sum to zero; a user's `kudos_balances.balance` equals the sum of
that user's postings; system accounts and the anonymous user have no balance row that requests
update (they are shared by many requests: their balance is the sum of their postings, ADR 0004).
Debits never take a balance below the user's floor; the forgiven part is posted from
`system:floor` (the reference's FLOOR_ADJUSTMENT).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.kit.orm import table, utc
from horde.server.kudos.models import KudosBalance, KudosPosting
from horde.server.users.models import ANON_USER_ID

postings = table(KudosPosting)
balances = table(KudosBalance)

ANON_FLOOR = -5000
PSEUDONYMOUS_FLOOR = 1400
OAUTH_FLOOR = 2500


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a movement: a user (user_id) or a system account (system name)."""

    amount: int  # hundredths, signed
    user_id: int | None = None
    system: str | None = None
    floor: int | None = None  # for user debits: the balance never goes below it


def user_floor(user_id: int, oauth_id: str) -> int:
    if user_id == ANON_USER_ID:
        return ANON_FLOOR
    return PSEUDONYMOUS_FLOOR if oauth_id.startswith("pseudo:") else OAUTH_FLOOR


async def _apply_floor(conn: AsyncConnection, leg: Leg) -> tuple[Leg, int]:
    """Cap a user debit at the floor; returns the capped leg and the forgiven hundredths."""
    if leg.user_id is None or leg.amount >= 0 or leg.floor is None:
        return leg, 0
    if leg.user_id == ANON_USER_ID:  # shared by everyone and never above its floor: debits are forgiven
        return Leg(amount=0, user_id=leg.user_id), -leg.amount
    balance = await conn.scalar(
        select(balances.c.balance).where(balances.c.user_id == leg.user_id).with_for_update()
    )
    current = int(balance or 0)
    allowed = max(min(current - leg.floor, -leg.amount), 0)
    return Leg(amount=-allowed, user_id=leg.user_id), -leg.amount - allowed


async def post(
    conn: AsyncConnection, *, legs: Sequence[Leg], reason: str, ref: str | None = None, now: float
) -> uuid.UUID:
    """Record one event. Legs must sum to zero; floor forgiveness is balanced from `system:floor`."""
    if sum(leg.amount for leg in legs) != 0:
        raise ValueError("postings of one event must sum to zero")
    event_id = uuid.uuid4()
    rows = []
    forgiven_total = 0
    for original in legs:
        leg, forgiven = await _apply_floor(conn, original)
        forgiven_total += forgiven
        rows.append(_row(event_id, leg, reason, ref, now))
    if forgiven_total:
        rows.append(_row(event_id, Leg(amount=-forgiven_total, system="floor"), reason, ref, now))
    rows = [r for r in rows if r["amount"]]
    if rows:
        await conn.execute(insert(postings), rows)
    for row in rows:
        user_id, amount = row["user_id"], row["amount"]
        if isinstance(user_id, int) and user_id != ANON_USER_ID and isinstance(amount, int):
            await _add_to_balance(conn, user_id, amount)
    return event_id


def _row(event_id: uuid.UUID, leg: Leg, reason: str, ref: str | None, now: float) -> dict[str, object]:
    account = "user" if leg.user_id is not None else f"system:{leg.system}"
    return {
        "event_id": event_id,
        "account": account,
        "user_id": leg.user_id,
        "amount": leg.amount,
        "reason": reason,
        "ref": ref,
        "created_at": utc(now),
    }


async def _add_to_balance(conn: AsyncConnection, user_id: int, amount: int) -> None:
    result = await conn.execute(
        update(balances).where(balances.c.user_id == user_id).values(balance=balances.c.balance + amount)
    )
    if result.rowcount == 0:
        await conn.execute(insert(balances).values(user_id=user_id, balance=amount))


async def balance_of(conn: AsyncConnection, user_id: int) -> int:
    """A user's balance in hundredths (the anonymous user's is derived from its postings)."""
    if user_id == ANON_USER_ID:
        total = await conn.scalar(
            select(func.coalesce(func.sum(postings.c.amount), 0)).where(postings.c.user_id == ANON_USER_ID)
        )
        return int(total or 0)
    value = await conn.scalar(select(balances.c.balance).where(balances.c.user_id == user_id))
    return int(value or 0)


async def totals_by_reason(conn: AsyncConnection, user_id: int) -> dict[str, int]:
    """Sum of a user's postings per reason (for kudos_details)."""
    rows = await conn.execute(
        select(postings.c.reason, func.sum(postings.c.amount))
        .where(postings.c.user_id == user_id)
        .group_by(postings.c.reason)
    )
    return {str(reason): int(total) for reason, total in rows}


async def verify(conn: AsyncConnection) -> list[str]:
    """Problems found: events that do not sum to zero, balances that differ from their postings."""
    problems: list[str] = []
    unbalanced = await conn.execute(
        select(postings.c.event_id, func.sum(postings.c.amount))
        .group_by(postings.c.event_id)
        .having(func.sum(postings.c.amount) != 0)
    )
    problems += [f"event {event} sums to {total}" for event, total in unbalanced]
    sums = dict(
        (
            await conn.execute(
                select(postings.c.user_id, func.sum(postings.c.amount))
                .where(postings.c.user_id.is_not(None), postings.c.user_id != ANON_USER_ID)
                .group_by(postings.c.user_id)
            )
        ).all()
    )
    for user_id, balance in (await conn.execute(select(balances.c.user_id, balances.c.balance))).all():
        if int(sums.get(user_id, 0)) != int(balance):
            problems.append(f"user {user_id}: balance {balance} but postings sum to {sums.get(user_id, 0)}")
    return problems
