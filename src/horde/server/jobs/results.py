"""Submitting results and faults: the second half of a job's lease.

Invariants: a result is accepted only by the compare-and-set `state = 'processing' AND worker_id = ..`
(so a double, late, unknown or foreign submit changes nothing); the result, the payment (the kudos
ledger's postings), the worker's figures and the webhook's outbox row are written together or not at
all (`JobStatements.complete`); a job pays its worker's owner its reward times the bridge's
multiplier, half of it in escrow for an untrusted owner (ADR 0023), and never more than it charges its
requester (a censored one charges almost nothing, so it pays almost nothing: ADR 0014); a charge consumes the
request's upfront hold, and the last job to end releases what is left of it; a faulted job is kept
and replaced by a fresh queued row until the request reaches its fault limit (ADR 0001).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from horde.contract import GenerationSubmitted
from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.jobs import store
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.models import JobState
from horde.server.jobs.problems import record_problem_job
from horde.server.jobs.records import RequestRow, SubmitOutcome
from horde.server.jobs.statements import Completion, Hook
from horde.server.kudos import pricing, rewards
from horde.server.kudos import service as kudos
from horde.server.kudos.service import Leg
from horde.server.state import Horde
from horde.server.users.principal import Principal
from horde.server.users.records import recorded_values
from horde.server.workers.models import Worker


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise HordeError(RC.InvalidJobID, "Processing Generation with ID not found") from None


def _diagnose(
    job: dict[str, Any] | None, worker: dict[str, Any] | None, user: Principal, faulting: bool
) -> None:
    """Raise the reference's error for a job that cannot take this submit."""
    if job is None or worker is None:
        raise HordeError(RC.InvalidJobID, "Processing Generation with ID not found")
    if worker["user_id"] != user.id:
        raise HordeError(RC.WrongCredentials, "Wrong credentials to submit as this worker")
    if job["state"] == JobState.DONE:
        raise HordeError(RC.DuplicateGen, "Processing Generation has already been submitted")
    if job["state"] in (JobState.FAULTED, JobState.CANCELLED) and not faulting:
        raise HordeError(RC.AbortedGen, "Processing Generation has been aborted or timed out")


async def submit_job(horde: Horde, *, kind: str, body: Any, user: Principal) -> GenerationSubmitted:
    """Accept a worker's result (or fault) for a job it holds; answers `{reward}`."""
    behaviour = KINDS[kind]
    job_id = _parse_id(body.id)
    faulting = getattr(body, "state", "ok") == "faulted"
    async with horde.db.autocommit() as conn:
        job, worker = await horde.statements.load_job(conn, job_id)
        _diagnose(job, worker, user, faulting)
        assert job is not None
        assert worker is not None
        if job["state"] != JobState.PROCESSING:
            return GenerationSubmitted(reward=0)  # the worker reports a fault for a job already timed out
        request = await horde.requests.get(conn, job["request_id"])
    if request is None or job["kind"] != kind:
        raise HordeError(RC.InvalidJobID, "Processing Generation with ID not found")
    outcome = await behaviour.accept(horde, body, request=request, job=job, worker=Worker(**worker))
    if outcome.faulted:
        await fault_jobs(horde, [job_id], reason="worker", worker_id=worker["id"])
        return GenerationSubmitted(reward=0)
    # the webhook's body is built before writing: it may read the stored image (r2=false)
    hook = (
        Hook(request.webhook, await _webhook_body(horde, request, job, worker, outcome))
        if request.webhook
        else None
    )
    completion = _completion(horde, job, worker, request, outcome, hook, owner_trusted=user.is_trusted)
    if not await horde.statements.complete(completion):
        async with horde.db.autocommit() as conn:
            current, _ = await horde.statements.load_job(conn, job_id)
        _diagnose(current, worker, user, faulting)
        raise HordeError(RC.AbortedGen, "Processing Generation has been aborted or timed out")
    if completion.hold_ref is not None:
        await _release_if_ended(horde, request.id, completion.hold_ref)
    if outcome.problem:
        await record_problem_job(horde, job=job, worker_id=worker["id"])
    horde.notifier.request_changed(request.id)
    if request.webhook:
        horde.webhooks.kick()
    # the answer is the generation kudos before the bridge multiplier (SEMANTICS.md 3.4), as charged
    gross = min(pricing.hundredths(outcome.reward), completion.burn)
    return GenerationSubmitted(reward=pricing.kudos_of(gross))


async def _release_if_ended(horde: Horde, request_id: uuid.UUID, ref: str) -> None:
    # after our own commit: of two last jobs ending together, the later one sees both ended
    async with horde.db.transaction() as conn:
        open_jobs = await conn.scalar(
            select(func.count())
            .select_from(store.jobs)
            .where(
                store.jobs.c.request_id == request_id,
                store.jobs.c.state.in_([JobState.QUEUED, JobState.PROCESSING]),
            )
        )
        if not open_jobs:
            await kudos.release_holds(conn, [ref])


async def _webhook_body(
    horde: Horde, request: RequestRow, job: dict[str, Any], worker: dict[str, Any], outcome: SubmitOutcome
) -> dict[str, Any]:
    """What the reference POSTs for a finished job: the job as status shows it, plus ids and kudos."""
    done = {**job, "state": JobState.DONE, "result": outcome.result, "result_meta": outcome.meta}
    generation = await KINDS[request.kind].generation(horde, request, {**done, "worker_name": worker["name"]})
    reward = pricing.kudos_of(min(pricing.hundredths(outcome.reward), pricing.hundredths(outcome.burn)))
    return {**generation, "request": str(request.id), "id": str(job["id"]), "kudos": reward}


def _completion(
    horde: Horde,
    job: dict[str, Any],
    worker: dict[str, Any],
    request: RequestRow,
    outcome: SubmitOutcome,
    hook: Hook | None,
    *,
    owner_trusted: bool,
) -> Completion:
    now = horde.clock.now()
    burn = pricing.hundredths(outcome.burn)
    multiplier = horde.capabilities.reward_multiplier(str(worker["bridge_agent"] or ""))
    # never more than the job charges (ADR 0014), after the bridge's multiplier (SEMANTICS.md 4.5)
    reward = min(round(pricing.hundredths(outcome.reward) * multiplier), burn)
    owner_legs = rewards.job_reward_legs(owner_id=worker["user_id"], paid=reward, owner_trusted=owner_trusted)
    legs = [
        *owner_legs,
        Leg(amount=-burn, user_id=request.user_id),
        Leg(amount=burn - reward, system="horde"),
    ]
    elapsed = max(now - float(job["started_at"] or now), 0.001)
    team = worker["team_id"] if KINDS[request.kind].credits_teams else None
    team_id = uuid.UUID(str(team)) if team is not None else None  # SQLite's rows give it as text
    return Completion(
        job_id=job["id"], worker_id=worker["id"], now=now, reward=reward, burn=burn, result=outcome.result,
        meta=outcome.meta, legs=legs, things=outcome.things, sample=outcome.things / elapsed, hook=hook,
        team_id=team_id, hold_ref=kudos.hold_ref(request.id) if request.payload.get("held") else None,
        kind=request.kind, model=job.get("model"),
        records=recorded_values(
            kind=KINDS[request.kind].api_type, requester_id=request.user_id, owner_id=worker["user_id"],
            now=now,
        ),
    )  # fmt: skip


async def fault_jobs(
    horde: Horde, job_ids: list[uuid.UUID], *, reason: str, worker_id: uuid.UUID | None = None
) -> int:
    """Fault leased jobs (expired or reported) and re-queue replacements below the fault limit."""
    faulted = 0
    settings = horde.settings
    for job_id in job_ids:
        done = await horde.statements.fault(
            job_id, reason=reason, now=horde.clock.now(), fault_limit=settings.fault_limit,
            form_fault_limit=settings.alchemy_fault_limit,
        )  # fmt: skip
        if done is None:
            continue
        faulted += 1
        horde.notifier.request_changed(done.request_id)
    if faulted:
        horde.notifier.work_added(None)
    return faulted
