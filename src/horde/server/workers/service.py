"""Workers as the pop sees them: found or created by name, checked in (debounced), limited per owner.

Invariants: one name belongs to one worker of one kind and one owner; a changed declaration (or a worker
this node has no record of) is written on the pop's path, at once; an unchanged one is written every
`checkin_debounce` to 1.5 x `checkin_debounce` seconds (spread, so workers that started together do not
all come due in the same second), beside the pop, never on its path (ADR 0013). Each write inserts a
check-in event, which the uptime folder turns into uptime and its rewards (ADR 0023).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server import access
from horde.server.errors import HordeError
from horde.server.jobs.kinds import KINDS
from horde.server.kit.orm import table, utc
from horde.server.kit.profanity import refuse_profane
from horde.server.state import Horde
from horde.server.users.principal import Principal
from horde.server.workers.cache import CachedWorker
from horde.server.workers.models import Worker
from horde.server.workers.uptime import record_checkin

workers = table(Worker)

MAX_WORKER_MODELS = 300
FORBIDDEN_NAME_PARTS = ("colab", "tpu", "google")


def _check_name(name: str) -> None:
    if not 5 <= len(name) <= 100:
        raise HordeError(RC.TooLongWorkerName, "Worker names must be 5 to 100 characters")
    lowered = name.lower()
    if any(part in lowered for part in FORBIDDEN_NAME_PARTS):
        raise HordeError(RC.ProfaneWorkerName, "This worker name is not allowed")


async def _check_new_worker_limits(
    conn: AsyncConnection, *, owner: Principal, ipaddr: str, invite_only: bool
) -> None:
    owned = int(await conn.scalar(select(func.count()).where(workers.c.user_id == owner.id)) or 0)
    if invite_only and owned >= owner.worker_invited:
        raise HordeError(
            RC.WorkerInviteOnly,
            f"This horde only accepts invited workers, and you have {owner.worker_invited} invitations "
            f"for {owned} workers. Please ask a moderator for an invitation.",
        )
    limit = 20 if owner.is_trusted else 3
    if owned >= limit and owned >= owner.worker_invited:
        rc = RC.TooManyWorkersTrusted if owner.is_trusted else RC.TooManyWorkers
        raise HordeError(rc, f"You have reached the maximum of {limit} workers")
    same_ip = int(await conn.scalar(select(func.count()).where(workers.c.ipaddr == ipaddr)) or 0)
    if same_ip >= limit and same_ip >= owner.worker_invited:
        raise HordeError(RC.TooManySameIPs, "Too many workers from this IP address")


async def _load(conn: AsyncConnection, name: str) -> Worker | None:
    row = (await conn.execute(select(workers).where(workers.c.name_lower == name.lower()))).first()
    return Worker(**row._mapping) if row else None


def _verify(worker: Worker, *, kind: str, owner: Principal) -> None:
    if worker.kind != kind:
        raise HordeError(
            RC.PolymorphicNameConflict, "This worker name is already used by another worker type"
        )
    access.admit(access.POP, owner, owner_id=worker.user_id)


def _declaration(body: Any, models: list[str], config: dict[str, Any], ipaddr: str) -> dict[str, Any]:
    return {
        "ipaddr": ipaddr,
        "bridge_agent": body.bridge_agent,
        "threads": body.threads,
        "nsfw": bool(getattr(body, "nsfw", False)),
        "models": models,
        "config": config,
    }


def _signature(declaration: dict[str, Any]) -> tuple[object, ...]:
    return tuple(repr(declaration[k]) for k in sorted(declaration))


@dataclass(frozen=True, slots=True)
class CheckIn:
    """What a popping worker declares, as the check-in writes it and compares it."""

    kind: str
    name: str
    owner: Principal
    declaration: dict[str, Any]
    signature: tuple[object, ...]


def declare(
    *, kind: str, body: Any, owner: Principal, models: list[str], config: dict[str, Any], ipaddr: str
) -> CheckIn:
    declaration = _declaration(body, models, config, ipaddr)
    return CheckIn(kind, body.name, owner, declaration, _signature(declaration))


def recent(horde: Horde, c: CheckIn) -> Worker | None:
    """The worker's cached record when its declaration is unchanged (`check_in` otherwise). When its
    check-in is due, the write starts beside this pop, which goes on with the cached record."""
    cached = horde.workers.get(c.name)
    if cached is None:
        return None
    _verify(cached.worker, kind=c.kind, owner=c.owner)
    if cached.signature != c.signature:
        return None
    if horde.clock.now() >= cached.due_at:
        horde.workers.write_later(c.name, lambda: _write_due(horde, c))
    return cached.worker


async def _write_due(horde: Horde, c: CheckIn) -> None:
    async with horde.db.autocommit() as conn:
        await _write(horde, conn, c)


async def check_in(horde: Horde, conn: AsyncConnection, c: CheckIn) -> Worker:
    """The popping worker's record, created on its first pop; writes the check-in when due."""
    known = recent(horde, c)
    if known is not None:
        return known
    return await _write(horde, conn, c)


async def _write(horde: Horde, conn: AsyncConnection, c: CheckIn) -> Worker:
    now = horde.clock.now()
    kind, name, owner = c.kind, c.name, c.owner
    # a changed declaration is written here, on the pop's path, so a profane agent never gets stored
    agent = c.declaration["bridge_agent"]
    refuse_profane(horde.settings, agent, rc=RC.ProfaneBridgeAgent, what="bridge agent")
    # The write returns the whole row, so what other nodes changed (maintenance, paused, name by a
    # PUT, speed) reaches this node's cache at every due check-in.
    row = (
        await conn.execute(
            update(workers)
            .where(
                workers.c.name_lower == name.lower(), workers.c.user_id == owner.id, workers.c.kind == kind
            )
            .values(last_check_in=utc(now), **c.declaration)
            .returning(workers)
        )
    ).first()
    if row is not None:
        worker = Worker(**row._mapping)
    else:
        existing = await _load(conn, name)
        if existing is not None:
            _verify(existing, kind=kind, owner=owner)  # raises: another owner's or another kind's name
        refuse_profane(horde.settings, name, rc=RC.ProfaneWorkerName, what="worker name")
        try:
            invite_only = horde.guard.modes.invite_only  # refreshed by the pop's IP check
            worker = await _create(
                conn, kind=kind, name=name, owner=owner, declaration=c.declaration, now=now,
                invite_only=invite_only,
            )  # fmt: skip
        except IntegrityError:  # the same new worker's first two pops raced: the other one created it
            existing = await _load(conn, name)
            if existing is None:
                raise
            _verify(existing, kind=kind, owner=owner)
            worker = existing
    await _record_uptime(horde, conn, worker, now)
    debounce = horde.settings.checkin_debounce
    due_at = now + debounce * random.uniform(1.0, 1.5)  # spread, not a secret
    horde.workers.put(CachedWorker(worker=worker, written_at=now, signature=c.signature, due_at=due_at))
    return worker


async def _record_uptime(horde: Horde, conn: AsyncConnection, worker: Worker, now: float) -> None:
    # the uptime folder accrues the gaps between these events (workers/uptime.py, ADR 0023)
    record = {"models": worker.models, "config": worker.config, "bridge_agent": worker.bridge_agent}
    await record_checkin(
        conn, worker_id=worker.id, now=now, active=not (worker.paused or worker.maintenance),
        reward=KINDS[worker.kind].uptime_reward(horde, record),
    )  # fmt: skip


async def _create(
    conn: AsyncConnection,
    *,
    kind: str,
    name: str,
    owner: Principal,
    declaration: dict[str, Any],
    now: float,
    invite_only: bool,
) -> Worker:
    _check_name(name)
    await _check_new_worker_limits(conn, owner=owner, ipaddr=declaration["ipaddr"], invite_only=invite_only)
    values = {
        "id": uuid.uuid4(), "kind": kind, "name": name, "name_lower": name.lower(), "user_id": owner.id,
        "created_at": utc(now), "last_check_in": utc(now), "info": None, "maintenance": False,
        "maintenance_msg": None, "paused": False, "fulfilments": 0, "kudos_generated": 0,
        "kudos_uptime": 0, "things": 0.0, "uptime": 0, "uncompleted_jobs": 0, "aborted_jobs": 0,
        "speed": 1.0, "team_id": None, **declaration,
    }  # fmt: skip
    await conn.execute(insert(workers).values(**values))
    return Worker(**values)


def check_models(horde: Horde, *, kind: str, models: list[str], owner: Principal) -> list[str]:
    """The worker's declared models as the horde records them (SEMANTICS.md 3.3.3)."""
    if len(models) > MAX_WORKER_MODELS:
        raise HordeError(RC.BadRequest, f"A worker may declare at most {MAX_WORKER_MODELS} models")
    return KINDS[kind].worker_models(horde, list(dict.fromkeys(models)), owner=owner)
