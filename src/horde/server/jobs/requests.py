"""Accepting and cancelling client requests.

Invariants: a request is stored with all its jobs `queued` in one transaction, after every check and
any source-image work (which never runs inside a transaction); the concurrency cap counts jobs not yet
handed out; cancelling never touches jobs a worker holds.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select, text, update

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.jobs import store
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.kinds.base import RequestRow
from horde.server.jobs.models import JobState, RequestState
from horde.server.jobs.records import NewRequest
from horde.server.kit.orm import table
from horde.server.kudos import service as kudos
from horde.server.state import Horde
from horde.server.users.principal import Principal
from horde.server.workers.models import Worker

workers = table(Worker)
_USER_LOCK = text("SELECT pg_advisory_xact_lock(2, :uid)")


def priority_key(balance_hundredths: int, now: float) -> float:
    """Queue order fixed at activation: kudos minus 5 per second of age (ADR 0005)."""
    return balance_hundredths / 100 - 5.0 * now


async def submit_request(
    horde: Horde, *, kind: str, body: Any, user: Principal, client_agent: str, ipaddr: str
) -> dict[str, Any]:
    """Validate, price and queue a client's request; a dry run only prices it."""
    behaviour = KINDS[kind]
    if user.deleted:
        raise HordeError(RC.DeletedUser, "This user has been deleted")
    new = await behaviour.prepare(horde, body, user=user)
    if getattr(body, "dry_run", False):
        return {"kudos": new.dry_run_kudos}
    now = horde.clock.now()
    ttl = behaviour.ttl(horde, new)
    async with horde.db.transaction() as conn:
        await _check_targets(conn, new)
        await _check_concurrency(conn, horde, kind=kind, new=new, user=user)
        balance = await kudos.balance_of(conn, user.id)
        request_id = await store.insert_request(
            conn,
            new,
            user_id=user.id,
            now=now,
            expires_at=now + horde.settings.request_expiry,
            priority_key=priority_key(balance, now),
            ttl=ttl,
            client_agent=client_agent,
            ipaddr=ipaddr,
        )
    horde.requests.remember(_as_stored(new, request_id, user_id=user.id, ttl=ttl, now=now))
    horde.notifier.work_added(kind)
    return behaviour.accepted_body(request_id, new, possible=horde.snapshots.could_be_served(kind, new))


def _as_stored(new: NewRequest, request_id: uuid.UUID, *, user_id: int, ttl: float, now: float) -> RequestRow:
    """The request as `store.load_request` would read it back (the payload through JSON, as stored)."""
    return RequestRow(
        id=request_id, kind=new.kind, user_id=user_id, payload=json.loads(json.dumps(new.payload)),
        models=list(new.models), kudos=new.kudos, ttl=ttl, n=len(new.jobs), slow_workers=new.slow_workers,
        worker_blacklist=new.worker_blacklist, webhook=new.webhook, created_at=now, nsfw=new.nsfw,
    )  # fmt: skip


async def _check_targets(conn: Any, new: NewRequest) -> None:
    if not new.worker_ids:
        return
    found = set((await conn.scalars(select(workers.c.id).where(workers.c.id.in_(new.worker_ids)))).all())
    for worker_id in new.worker_ids:
        if worker_id not in found:
            raise HordeError(RC.WorkerNotFound, f"Worker with ID '{worker_id}' not found")


async def _check_concurrency(conn: Any, horde: Horde, *, kind: str, new: NewRequest, user: Principal) -> None:
    limit = user.concurrency * KINDS[kind].concurrency_factor
    if user.education:
        limit = max(limit, 200)
    if not horde.db.is_sqlite:  # one check at a time per user, so two requests cannot both fit
        await conn.execute(_USER_LOCK, {"uid": user.id})
    models = new.models if user.is_anon and new.models else None
    queued = await store.queued_jobs_of_user(conn, user_id=user.id, kind=kind, models=models)
    if queued + len(new.jobs) > limit:
        raise HordeError(
            RC.TooManyPrompts,
            f"Parallel requests ({queued}) exceeded user limit ({limit}). Please try again when your "
            "previous requests have completed",
        )


async def cancel_request(horde: Horde, *, kind: str, request_id: uuid.UUID) -> None:
    """Stop handing out the request's jobs; jobs workers hold may still be submitted."""
    async with horde.db.transaction() as conn:
        await conn.execute(
            update(store.requests)
            .where(store.requests.c.id == request_id, store.requests.c.state == RequestState.ACTIVE)
            .values(state=RequestState.CANCELLED)
        )
        await conn.execute(
            update(store.jobs)
            .where(store.jobs.c.request_id == request_id, store.jobs.c.state == JobState.QUEUED)
            .values(state=JobState.CANCELLED, finished_at=horde.clock.now())
        )
    horde.notifier.request_changed(request_id)
