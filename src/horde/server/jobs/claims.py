"""Popping jobs: the worker's hot path.

Invariants: a job is handed out only by the conditional claim (`matching.claim_statement`), so no job
goes to two workers; an empty pop costs at most one autocommit statement plus cached work, and none
when the queue snapshot proves nothing fits the worker (ADR 0008); the `skipped` counts come from the
queue snapshot, never from a scan of the queue.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.kinds.base import Kind
from horde.server.jobs.records import ClaimedJob, RequestRow, WorkerProfile
from horde.server.kit.orm import table
from horde.server.state import Horde
from horde.server.users.principal import Principal
from horde.server.workers import service as workers
from horde.server.workers.models import Worker

MAX_PRIORITY_USERNAMES = 50


def _check_owner(user: Principal) -> None:
    if user.is_anon:
        raise HordeError(RC.AnonForbiddenWorker, "Anonymous users cannot run workers")
    if user.deleted:
        raise HordeError(RC.DeletedUser, "This user has been deleted")
    if user.flagged:
        raise HordeError(RC.WorkerFlaggedMaintenance, "The owner of this worker is flagged")


async def _check_safe_ip(horde: Horde, owner: Principal, ipaddr: str) -> None:
    """Untrusted owners' workers must run from safe IPs, except in raid mode, which tolerates them."""
    if owner.is_trusted or owner.vpn or horde.guard.modes.raid:
        return
    if await horde.reputation.is_unsafe(ipaddr):
        raise HordeError(RC.UnsafeIP, f"Your worker cannot connect from an unsafe IP address ({ipaddr})")


def _priority_user_ids(body: Any, owner: Principal) -> list[int]:
    ids = [owner.id]
    aliases = list(getattr(body, "priority_usernames", []) or [])
    if len(aliases) > MAX_PRIORITY_USERNAMES:
        raise HordeError(RC.InvalidPriorityUsername, f"At most {MAX_PRIORITY_USERNAMES} priority_usernames")
    for alias in aliases:
        _, _, digits = str(alias).rpartition("#")
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
            raise HordeError(RC.InvalidPriorityUsername, "priority_usernames must be of the form alias#id")
        ids.append(int(digits))
    return list(dict.fromkeys(ids))


async def pop_jobs(horde: Horde, *, kind: str, body: Any, user: Principal, ipaddr: str) -> dict[str, Any]:
    """Lease the best matching jobs to the popping worker, or say why there were none."""
    _check_owner(user)
    await horde.guard.check_worker(ipaddr)
    await _check_safe_ip(horde, user, ipaddr)
    behaviour = KINDS[kind]
    priority_ids = _priority_user_ids(body, user)
    models = workers.check_models(
        horde, kind=kind, models=list(getattr(body, "models", []) or []), owner=user
    )
    declared = workers.declare(
        kind=kind, body=body, owner=user, models=models, config=behaviour.worker_config(body), ipaddr=ipaddr
    )
    worker = workers.recent(horde, declared)
    if worker is not None:
        profile = _profile(horde, behaviour, worker, owner=user, amount=body.amount)
        if worker.paused or await horde.snapshots.nothing_for(kind, profile):
            return await _with_messages(horde, worker, await _empty(horde, behaviour, profile, worker))
    async with horde.db.autocommit() as conn:
        if worker is None:
            worker = await workers.check_in(horde, conn, declared)
            profile = _profile(horde, behaviour, worker, owner=user, amount=body.amount)
        claimed = await _claim(horde, conn, behaviour, profile, worker, priority_ids)
        batches = await _with_requests(horde, conn, behaviour, profile, claimed) if claimed else []
    # The connection is back in the pool: the snapshot and the storage need none of it.
    if not batches:
        return await _with_messages(horde, worker, await _empty(horde, behaviour, profile, worker))
    bodies = [await behaviour.pop_body(horde, request, batch, profile) for request, batch in batches]
    return await _with_messages(horde, worker, behaviour.merge_pop_bodies(bodies))


async def _with_messages(horde: Horde, worker: Worker, body: dict[str, Any]) -> dict[str, Any]:
    """The pop's answer with the worker's active messages (from this node's board: no query)."""
    found = await horde.messages.for_worker(worker.id)
    if found:
        body["messages"] = found
    return body


def _profile(
    horde: Horde, behaviour: Kind, worker: Worker, *, owner: Principal, amount: int
) -> WorkerProfile:
    """The worker's matching profile, derived once per check-in record (the empty pop's hot path)."""
    entry = horde.workers.get(worker.name)
    key = (owner.is_trusted, amount)
    cached = entry.profiles.get(key) if entry is not None and entry.worker is worker else None
    if isinstance(cached, WorkerProfile):
        return cached
    record = {c.name: getattr(worker, c.name) for c in table(Worker).columns}
    profile = behaviour.profile(horde, record, owner_trusted=owner.is_trusted, amount=amount)
    if entry is not None and entry.worker is worker:
        entry.profiles[key] = profile
    return profile


async def _claim(
    horde: Horde,
    conn: AsyncConnection,
    behaviour: Kind,
    profile: WorkerProfile,
    worker: Worker,
    priority_ids: list[int],
) -> list[ClaimedJob]:
    if worker.paused:
        return []
    limit = profile.amount if behaviour.batch_across_requests else 1
    fallback = random.choice(sorted(profile.models)) if profile.models else None
    owners_only = [worker.user_id] if worker.maintenance else []
    attempts = [owners_only] if owners_only else []
    if not owners_only:
        preferred = [uid for uid in priority_ids if horde.snapshots.has_queued(behaviour.name, uid)]
        attempts = [preferred, []] if preferred else [[]]
    for user_ids in attempts:
        claimed = await horde.statements.claim(
            conn, profile, limit=limit, user_ids=user_ids, now=horde.clock.now(), fallback_model=fallback,
            ttl_scale=horde.settings.job_ttl_scale,
        )  # fmt: skip
        if claimed:
            return claimed
    return []


async def _with_requests(
    horde: Horde, conn: AsyncConnection, behaviour: Kind, profile: WorkerProfile, claimed: list[ClaimedJob]
) -> list[tuple[RequestRow, list[ClaimedJob]]]:
    grouped: dict[uuid.UUID, list[ClaimedJob]] = {}
    for job in claimed:
        grouped.setdefault(job.request_id, []).append(job)
    result = []
    for request_id, batch in grouped.items():
        request = await horde.requests.get(conn, request_id)
        if request is None:
            continue  # deleted by the expiry sweep between claim and read: its jobs went with it
        if not behaviour.batch_across_requests:
            batch += await _batch(horde, conn, behaviour, profile, request, batch[0])
        result.append((request, batch))
    return result


async def _batch(
    horde: Horde,
    conn: AsyncConnection,
    behaviour: Kind,
    profile: WorkerProfile,
    request: RequestRow,
    first: ClaimedJob,
) -> list[ClaimedJob]:
    extra = behaviour.batch_size(request, profile) - 1
    if extra <= 0:
        return []
    return await horde.statements.batch(
        conn, limit=extra, request_id=request.id, model=first.model, worker_id=profile.worker_id,
        now=horde.clock.now(), ttl_scale=horde.settings.job_ttl_scale * (3.0 if profile.extra_slow else 1.0),
    )  # fmt: skip


async def _empty(horde: Horde, behaviour: Kind, profile: WorkerProfile, worker: Worker) -> dict[str, Any]:
    if worker.maintenance:
        raise HordeError(RC.WorkerMaintenance, worker.maintenance_msg or "This worker is in maintenance")
    skipped = await horde.snapshots.skipped(behaviour.name, profile)
    for key in behaviour.always_skipped_keys:
        skipped.setdefault(key, 0)
    return behaviour.empty_pop_body(skipped)
