"""Kudos: an append-only ledger of postings and the balances folded from it.

Invariants: the postings of one event sum to zero; for every user, `kudos_balances.balance` plus the
user's unfolded postings equals the sum of all the user's postings (`verify` proves it). Request paths
only ever INSERT postings, so no request locks a row that many requests share (STYLE.md); a single
folder (`fold`, scheduled every few seconds under a lock) adds them into the balances. Debits never
take a balance below the user's floor: the folder posts the forgiven part from `system:floor` (the
reference's FLOOR_ADJUSTMENT). The anonymous user is never charged (its floor is its balance).
Escrow (`evaluating_kudos`, SEMANTICS.md 4.5): postings on a user's `escrow` account instead of `user`;
the folder adds them to `kudos_balances.escrow`, never to the spendable balance, until a promotion
(kudos/trust.py) moves them across in one event (ADR 0023).
Holds (upfront kudos, SEMANTICS.md 4.4) reserve part of a balance: a user's available kudos are
balance - floor - holds; a hold is taken only under the payer's lock (the queueing statement), shrinks by
each charge it covers and is released when its request ends.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.kit.orm import table, utc
from horde.server.kit.sql import Params
from horde.server.kudos.models import KudosBalance, KudosHold, KudosPosting
from horde.server.users.models import ANON_USER_ID, User

postings = table(KudosPosting)
balances = table(KudosBalance)
holds = table(KudosHold)
users = table(User)

_INSERT = insert(postings)
# one statement, so a fold that commits meanwhile is seen entirely or not at all
USER = "user"
ESCROW = "escrow"


def _account_total(column: str, account: str) -> Any:
    folded = select(balances.c[column]).where(balances.c.user_id == bindparam("uid")).scalar_subquery()
    unfolded = (
        select(func.coalesce(func.sum(postings.c.amount), 0))
        .where(
            postings.c.user_id == bindparam("uid"),
            postings.c.folded.is_(False),
            postings.c.account == account,
        )
        .scalar_subquery()
    )
    return select(func.coalesce(folded, 0) + unfolded)


_BALANCE = _account_total("balance", USER)
_ESCROW = _account_total("escrow", ESCROW)

ANON_FLOOR = -5000
PSEUDONYMOUS_FLOOR = 1400
OAUTH_FLOOR = 2500


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a movement: a user (user_id) or a system account (system name)."""

    amount: int  # hundredths, signed
    user_id: int | None = None
    system: str | None = None
    escrow: bool = False  # the user's evaluating kudos, not the spendable balance (SEMANTICS.md 4.5)


def user_floor(user_id: int, oauth_id: str) -> int:
    """The balance below which debits are forgiven (SEMANTICS.md 4.4)."""
    if user_id == ANON_USER_ID:
        return ANON_FLOOR
    return PSEUDONYMOUS_FLOOR if oauth_id.startswith("pseudo:") else OAUTH_FLOOR


def event_rows(
    legs: Sequence[Leg], *, reason: str, ref: str | None = None, now: float
) -> list[dict[str, object]]:
    """The rows of one event (legs must sum to zero): what `post` inserts (and `postings_values` binds)."""
    if sum(leg.amount for leg in legs) != 0:
        raise ValueError("postings of one event must sum to zero")
    event_id = uuid.uuid4()
    rows: list[dict[str, object]] = []
    for leg in legs:
        if leg.user_id == ANON_USER_ID and leg.amount < 0:
            leg = Leg(amount=leg.amount, system="floor")  # anonymous use is never charged: the floor pays
        account = (ESCROW if leg.escrow else USER) if leg.user_id is not None else f"system:{leg.system}"
        rows.append({
            "event_id": event_id, "account": account, "user_id": leg.user_id, "amount": leg.amount,
            "reason": reason, "ref": ref, "created_at": utc(now), "folded": False,
        })  # fmt: skip
    return [row for row in rows if row["amount"]]


def postings_values(legs: Sequence[Leg], *, reason: str, ref: str | None, now: float) -> dict[str, object]:
    """The values of `postings_sql` for one event (legs must sum to zero)."""
    rows = event_rows(legs, reason=reason, ref=ref, now=now)
    return {
        "kudos_event": rows[0]["event_id"] if rows else uuid.uuid4(), "kudos_reason": reason,
        "kudos_ref": ref,
        "kudos_at": utc(now), "kudos_accounts": [r["account"] for r in rows],
        "kudos_users": [r["user_id"] for r in rows], "kudos_amounts": [r["amount"] for r in rows],
    }  # fmt: skip


def postings_sql(p: Params, *, after: str) -> str:
    """PostgreSQL: a data-modifying CTE body that records one event (`postings_values`) once per row of
    the CTE `after`, so a statement pays only when what it pays for went through."""
    legs = f"{p('kudos_accounts')}::varchar[], {p('kudos_users')}::integer[], {p('kudos_amounts')}::bigint[]"
    columns = "event_id, account, user_id, amount, reason, ref, created_at, folded"
    return f"""INSERT INTO kudos_postings ({columns})
    SELECT {p("kudos_event")}::uuid, leg.account, leg.user_id, leg.amount, {p("kudos_reason")}::varchar,
        {p("kudos_ref")}::varchar, {p("kudos_at")}::timestamptz, false
    FROM unnest({legs}) AS leg(account, user_id, amount), {after}
    RETURNING 1"""  # noqa: S608 (names and placeholders only: values are bound)


async def post(
    conn: AsyncConnection, *, legs: Sequence[Leg], reason: str, ref: str | None = None, now: float
) -> None:
    """Record one event (legs must sum to zero). Only inserts: balances follow at the next fold."""
    rows = event_rows(legs, reason=reason, ref=ref, now=now)
    if rows:
        await conn.execute(_INSERT, rows)


def hold_ref(request_id: uuid.UUID) -> str:
    """The hold of a request's upfront kudos."""
    return f"upfront:{request_id}"


def hold_settle_sql(p: Params, *, after: str) -> str:
    """PostgreSQL: a data-modifying CTE body that consumes a charge (`burn`) from the hold `hold_ref`,
    once per row of the CTE `after` (the charge went through)."""
    return f"""UPDATE kudos_holds SET amount = greatest(amount - {p("burn")}, 0)
    WHERE ref = {p("hold_ref")} AND EXISTS (SELECT 1 FROM {after})
    RETURNING 1"""  # noqa: S608 (names and placeholders only: values are bound)


async def settle_hold(conn: AsyncConnection, *, ref: str, charged: int) -> None:
    """Consume a charge from a hold (what `hold_settle_sql` does on PostgreSQL)."""
    await conn.execute(
        update(holds)
        .where(holds.c.ref == ref)
        .values(amount=case((holds.c.amount > charged, holds.c.amount - charged), else_=0))
    )


async def take_hold(
    conn: AsyncConnection, *, ref: str, user_id: int, amount: int, floor: int, now: float
) -> bool:
    """Reserve `amount` if the user's available kudos cover it; the caller holds the user's lock (SQLite:
    the one writer; PostgreSQL does this inside `horde_queue_request`)."""
    if await available_of(conn, user_id, floor=floor) < amount:
        return False
    await conn.execute(insert(holds).values(ref=ref, user_id=user_id, amount=amount, created_at=utc(now)))
    return True


async def release_holds(conn: AsyncConnection, refs: Sequence[str]) -> None:
    """Give back what these holds still reserve (their requests ended)."""
    if refs:
        await conn.execute(delete(holds).where(holds.c.ref.in_(list(refs))))


async def held_of(conn: AsyncConnection, user_id: int) -> int:
    """Hundredths a user has reserved in holds."""
    total = await conn.scalar(
        select(func.coalesce(func.sum(holds.c.amount), 0)).where(holds.c.user_id == user_id)
    )
    return int(total or 0)


async def available_of(conn: AsyncConnection, user_id: int, *, floor: int) -> int:
    """What a user may still commit: balance - floor - holds (SEMANTICS.md 4.4)."""
    return await balance_of(conn, user_id) - floor - await held_of(conn, user_id)


async def balance_of(conn: AsyncConnection, user_id: int) -> int:
    """A user's balance in hundredths: the folded balance plus what is not folded yet."""
    total = await conn.scalar(_BALANCE, {"uid": user_id})
    return int(total or 0)


async def escrow_of(conn: AsyncConnection, user_id: int) -> int:
    """A user's evaluating kudos in hundredths (escrowed rewards, SEMANTICS.md 4.5)."""
    total = await conn.scalar(_ESCROW, {"uid": user_id})
    return int(total or 0)


async def fold(conn: AsyncConnection, *, now: float, limit: int = 5000) -> int:
    """Add unfolded postings into the balances (escrow postings into the escrow), forgiving debits
    below each user's floor."""
    rows = (
        await conn.execute(
            select(postings.c.id, postings.c.user_id, postings.c.amount, postings.c.account)
            .where(postings.c.folded.is_(False), postings.c.user_id.is_not(None))
            .order_by(postings.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return 0
    debits: defaultdict[int, int] = defaultdict(int)
    credits: defaultdict[int, int] = defaultdict(int)
    escrow: defaultdict[int, int] = defaultdict(int)
    for _, user_id, amount, account in rows:
        if account == ESCROW:
            escrow[user_id] += amount
        else:
            (debits if amount < 0 else credits)[user_id] += amount
    for user_id in set(debits) | set(credits) | set(escrow):
        await _fold_user(conn, user_id, credits[user_id], debits[user_id], now, escrow=escrow[user_id])
    ids = [row.id for row in rows]
    for chunk in (ids[i : i + 1000] for i in range(0, len(ids), 1000)):
        await conn.execute(update(postings).where(postings.c.id.in_(chunk)).values(folded=True))
    return len(rows)


async def _fold_user(
    conn: AsyncConnection, user_id: int, credit: int, debit: int, now: float, *, escrow: int
) -> None:
    current = await conn.execute(
        select(balances.c.balance, users.c.oauth_id)
        .select_from(users.outerjoin(balances, balances.c.user_id == users.c.id))
        .where(users.c.id == user_id)
    )
    row = current.first()
    balance, oauth_id = (int(row.balance or 0), str(row.oauth_id)) if row else (0, "")
    new = balance + credit + debit
    floor = user_floor(user_id, oauth_id)
    forgiven = max(0, min(floor, balance + credit) - new) if debit < 0 else 0
    if forgiven:
        event_id = uuid.uuid4()
        common = {
            "event_id": event_id, "reason": "floor", "ref": None, "created_at": utc(now), "folded": True
        }  # fmt: skip
        await conn.execute(
            insert(postings),
            [
                {**common, "account": "user", "user_id": user_id, "amount": forgiven},
                {**common, "account": "system:floor", "user_id": None, "amount": -forgiven},
            ],
        )
    result = await conn.execute(
        update(balances)
        .where(balances.c.user_id == user_id)
        .values(balance=new + forgiven, escrow=balances.c.escrow + escrow)
    )
    if result.rowcount == 0:
        await conn.execute(insert(balances).values(user_id=user_id, balance=new + forgiven, escrow=escrow))


async def totals_by_reason(conn: AsyncConnection, user_id: int) -> dict[str, int]:
    """Sum of a user's postings per reason (for kudos_details)."""
    rows = await conn.execute(
        select(postings.c.reason, func.sum(postings.c.amount))
        .where(postings.c.user_id == user_id, postings.c.account == USER)
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
    for account, column in ((USER, "balance"), (ESCROW, "escrow")):
        problems += await _verify_account(conn, account, column)
    return problems


async def _verify_account(conn: AsyncConnection, account: str, column: str) -> list[str]:
    folded_sums = dict(
        (
            await conn.execute(
                select(postings.c.user_id, func.sum(postings.c.amount))
                .where(
                    postings.c.user_id.is_not(None),
                    postings.c.folded.is_(True),
                    postings.c.account == account,
                )
                .group_by(postings.c.user_id)
            )
        ).all()
    )
    problems: list[str] = []
    for user_id, total in (await conn.execute(select(balances.c.user_id, balances.c[column]))).all():
        if int(folded_sums.pop(user_id, 0)) != int(total):
            problems.append(f"user {user_id}: {column} {total} but folded postings sum to a different total")
    problems += [
        f"user {u}: folded {account} postings {t} but no balance row" for u, t in folded_sums.items() if t
    ]
    return problems
