"""The jobs domain's periodic sweeps: expired leases back to the queue, expired requests deleted."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, delete, exists, or_, select, update

from horde.server.jobs import store
from horde.server.jobs.models import JobState
from horde.server.jobs.results import fault_jobs
from horde.server.kudos import service as kudos
from horde.server.state import Horde

jobs = store.jobs
requests = store.requests


async def expire_leases(horde: Horde, *, batch: int = 500) -> int:
    """Fault jobs whose lease ran out and re-queue replacements (SEMANTICS.md 3.5); a lease that ran
    out before this process started (the horde was down) puts its job back in the queue unfaulted."""
    now = horde.clock.now()
    async with horde.db.autocommit() as conn:
        rows = (
            await conn.execute(
                select(jobs.c.id, jobs.c.lease_expires_at)
                .where(jobs.c.state == JobState.PROCESSING, jobs.c.lease_expires_at < now)
                .limit(batch)
            )
        ).all()
    during_downtime = [row.id for row in rows if row.lease_expires_at < horde.started_at]
    expired = [row.id for row in rows if row.lease_expires_at >= horde.started_at]
    requeued = await requeue_unfaulted(horde, during_downtime) if during_downtime else 0
    return requeued + (await fault_jobs(horde, expired, reason="expired") if expired else 0)


async def requeue_unfaulted(horde: Horde, ids: list[uuid.UUID]) -> int:
    """Put leased jobs back in the queue as if never popped: no fault, nothing counted against the
    worker (a late submit of them is refused like any submit of a job no longer leased)."""
    async with horde.db.transaction() as conn:
        rows = (
            await conn.execute(
                update(jobs)
                .where(jobs.c.id.in_(ids), jobs.c.state == JobState.PROCESSING)
                .values(
                    state=JobState.QUEUED, worker_id=None, started_at=None, lease_expires_at=None, model=None
                )
                .returning(jobs.c.request_id)
            )
        ).all()
    for request_id in {row.request_id for row in rows}:
        horde.notifier.request_changed(request_id)
    if rows:
        horde.notifier.work_added(None)
    return len(rows)


async def expire_requests(horde: Horde, *, batch: int = 1000) -> int:
    """Delete requests idle past their expiry, with their jobs (results go with them, as on the reference)."""
    now = horde.clock.now()
    window = now - horde.settings.request_expiry
    recent = exists().where(
        jobs.c.request_id == requests.c.id,
        or_(
            jobs.c.state == JobState.PROCESSING,
            jobs.c.started_at > window,
            and_(jobs.c.finished_at.is_not(None), jobs.c.finished_at > window),
        ),
    )
    async with horde.db.transaction() as conn:
        ids = (
            await conn.scalars(select(requests.c.id).where(requests.c.expires_at < now, ~recent).limit(batch))
        ).all()
        if ids:
            await conn.execute(delete(jobs).where(jobs.c.request_id.in_(ids)))
            await conn.execute(delete(store.request_models).where(store.request_models.c.request_id.in_(ids)))
            await conn.execute(
                delete(store.request_workers).where(store.request_workers.c.request_id.in_(ids))
            )
            await conn.execute(delete(requests).where(requests.c.id.in_(ids)))
            await kudos.release_holds(conn, [kudos.hold_ref(request_id) for request_id in ids])
    return len(ids)


async def purge_objects(horde: Horde) -> int:
    """Delete stored images older than the retention (SEMANTICS.md 7)."""
    return await horde.storage.purge(horde.clock.now() - horde.settings.result_retention)
