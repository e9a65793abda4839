"""Uptime and its rewards (SEMANTICS.md 4.5), from insert-only check-in events (ADR 0023).

A written check-in inserts one `worker_checkins` row (the reward per period its declaration earns,
and whether it is active: not paused, not in maintenance). The folder, one at a time under the
scheduler's lock, takes the oldest events, adds each gap of at most `UPTIME_STALE` seconds between
active check-ins to the worker's uptime, and pays the reward for every full `UPTIME_SECONDS` accrued:
escrowed for an untrusted owner (kudos/rewards.py), credited to the worker's team as uptime. A gap
longer than `UPTIME_STALE` starts a fresh period. No request path updates anything here.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.kit.orm import table
from horde.server.kudos import pricing, rewards
from horde.server.kudos import service as kudos
from horde.server.teams.writes import add_uptime
from horde.server.users.models import User
from horde.server.workers.models import Worker, WorkerCheckIn, WorkerUptime

checkins = table(WorkerCheckIn)
cursors = table(WorkerUptime)
workers = table(Worker)
users = table(User)


async def record_checkin(
    conn: AsyncConnection, *, worker_id: uuid.UUID, now: float, active: bool, reward: float
) -> None:
    """Insert the event of a written check-in."""
    await conn.execute(
        insert(checkins).values(worker_id=worker_id, at=now, active=active, reward=pricing.hundredths(reward))
    )


@dataclass
class Accrual:
    """What a batch of check-ins adds to one worker."""

    last_seen: float | None
    accrued: float
    seconds: float = 0.0
    payments: list[int] = field(default_factory=list)

    def see(self, at: float, active: bool, reward: int) -> None:
        last = self.last_seen
        if last is not None and at < last:
            return  # an older event written by another node: its gap is counted already
        gap = at - last if last is not None else None
        if gap is None or gap > pricing.UPTIME_STALE:
            self.accrued = 0.0  # back from offline: a fresh period
        elif active:
            self.seconds += gap
            self.accrued += gap
        self.last_seen = at
        while self.accrued >= pricing.UPTIME_SECONDS:
            self.accrued -= pricing.UPTIME_SECONDS
            self.payments.append(reward)


async def fold(conn: AsyncConnection, *, now: float, limit: int = 5000) -> int:
    """Take up to `limit` check-in events (oldest first), accrue them and pay; the events taken."""
    oldest = select(checkins.c.id).order_by(checkins.c.id).limit(limit).with_for_update(skip_locked=True)
    taken = (
        await conn.execute(
            delete(checkins)
            .where(checkins.c.id.in_(oldest.scalar_subquery()))
            .returning(checkins.c.worker_id, checkins.c.at, checkins.c.active, checkins.c.reward)
        )
    ).all()
    by_worker: defaultdict[uuid.UUID, list[tuple[float, bool, int]]] = defaultdict(list)
    for worker_id, at, active, reward in taken:
        by_worker[uuid.UUID(str(worker_id))].append((float(at), bool(active), int(reward)))
    for worker_id in sorted(by_worker):
        await _fold_worker(conn, worker_id, sorted(by_worker[worker_id]), now=now)
    return len(taken)


async def _fold_worker(
    conn: AsyncConnection, worker_id: uuid.UUID, events: list[tuple[float, bool, int]], *, now: float
) -> None:
    found = (
        await conn.execute(
            select(workers.c.user_id, workers.c.kind, workers.c.team_id, users.c.trusted, users.c.moderator)
            .join(users, users.c.id == workers.c.user_id)
            .where(workers.c.id == worker_id)
        )
    ).first()
    if found is None:
        return  # deleted meanwhile
    cursor = (await conn.execute(select(cursors).where(cursors.c.worker_id == worker_id))).first()
    accrual = Accrual(cursor.last_seen if cursor else None, cursor.accrued if cursor else 0.0)
    for at, active, reward in events:
        accrual.see(at, active, reward)
    state = {"last_seen": accrual.last_seen, "accrued": accrual.accrued}
    if cursor is None:
        await conn.execute(insert(cursors).values(worker_id=worker_id, **state))
    else:
        await conn.execute(update(cursors).where(cursors.c.worker_id == worker_id).values(**state))
    paid = sum(accrual.payments)
    seconds = int(accrual.seconds)
    if seconds or paid:
        await conn.execute(
            update(workers)
            .where(workers.c.id == worker_id)
            .values(uptime=workers.c.uptime + seconds, kudos_uptime=workers.c.kudos_uptime + paid)
        )
    if paid:
        legs = rewards.uptime_reward_legs(
            owner_id=found.user_id, paid=paid, owner_trusted=bool(found.trusted or found.moderator),
            kind=found.kind,
        )  # fmt: skip
        await kudos.post(conn, legs=legs, reason="uptime", ref=f"uptime:{worker_id}", now=now)
    if seconds and found.team_id is not None:
        await add_uptime(conn, team_id=uuid.UUID(str(found.team_id)), seconds=seconds, now=now)
