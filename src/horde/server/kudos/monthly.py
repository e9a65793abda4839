"""Monthly kudos: an admin-set amount paid once a month (SEMANTICS.md 4.6, ADR 0015).

Invariants: a payment is a `recurring` posting made in the same transaction as the conditional UPDATE
that moves `last_received` forward by exactly one calendar month from its old value, so a month is paid
once whatever runs concurrently or again; setting a higher amount pays the difference at once and
starts the month from then.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.kit.orm import table, utc
from horde.server.kudos import service as kudos
from horde.server.kudos.records import MonthlyKudos
from horde.server.kudos.transfers import MAX_MOVEMENT, lock_users

monthly = table(MonthlyKudos)
SHORTEST_MONTH = timedelta(days=28)


def next_month(value: datetime) -> datetime:
    """The same day and time one calendar month later (the month's last day when it is shorter)."""
    year, month = (value.year + 1, 1) if value.month == 12 else (value.year, value.month + 1)
    return value.replace(year=year, month=month, day=min(value.day, calendar.monthrange(year, month)[1]))


async def monthly_kudos_of(conn: AsyncConnection, user_id: int) -> tuple[int, datetime | None]:
    """(amount, last_received) of a user; (0, None) when none was ever set."""
    row = (
        await conn.execute(
            select(monthly.c.amount, monthly.c.last_received).where(monthly.c.user_id == user_id)
        )
    ).first()
    return (int(row.amount), row.last_received) if row else (0, None)


async def _pay(conn: AsyncConnection, user_id: int, amount: int, now: float) -> None:
    value = amount * 100
    await kudos.post(
        conn, legs=[kudos.Leg(value, user_id=user_id), kudos.Leg(-value, system="monthly")],
        reason="recurring", now=now,
    )  # fmt: skip


async def set_monthly_kudos(conn: AsyncConnection, *, user_id: int, amount: int, now: float) -> int:
    """Set a user's monthly amount; a rise is paid at once. Returns the amount."""
    if not 0 <= amount <= MAX_MOVEMENT:
        raise HordeError(RC.KudosValidationError, f"monthly_kudos is 0 to {MAX_MOVEMENT}")
    await lock_users(conn, user_id)
    old, _ = await monthly_kudos_of(conn, user_id)
    values = {"amount": amount, "last_received": utc(now)}
    done = await conn.execute(update(monthly).where(monthly.c.user_id == user_id).values(**values))
    if done.rowcount == 0:
        await conn.execute(insert(monthly).values(user_id=user_id, **values))
    if amount > old:
        await _pay(conn, user_id, amount - old, now)
    return amount


async def pay_monthly_kudos(conn: AsyncConnection, *, now: float, limit: int = 1000) -> int:
    """Pay every user whose month has passed, one month each; the number of payments made."""
    clock = utc(now)
    rows = (
        await conn.execute(
            select(monthly.c.user_id, monthly.c.amount, monthly.c.last_received)
            .where(monthly.c.amount > 0, monthly.c.last_received <= clock - SHORTEST_MONTH)
            .order_by(monthly.c.user_id)
            .limit(limit)
        )
    ).all()
    paid = 0
    for user_id, amount, last in rows:
        due = next_month(last)
        if due > clock:
            continue
        moved = await conn.execute(
            update(monthly)
            .where(monthly.c.user_id == user_id, monthly.c.last_received == last)
            .values(last_received=due)
        )
        if moved.rowcount == 1:
            await _pay(conn, user_id, int(amount), now)
            paid += 1
    return paid
