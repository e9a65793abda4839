"""Accepting and cancelling client requests.

Invariants: a request is stored with all its jobs `queued` in one transaction, after every check and
any source-image work (which never runs inside a transaction); the concurrency cap counts jobs not yet
handed out; a request above what the horde gives away (SEMANTICS.md 4.4) is stored only with a hold
of its price on its owner's available kudos, taken in that same transaction (anonymous use cannot
hold: it is refused, or shrunk with `allow_downgrade`); a stored request pays its activation tax, never
refunded (ADR 0023); cancelling never touches jobs a worker holds, and releases the hold.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import RequestAsync
from horde.contract.rc import RC
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.filters.screen import screen_prompt
from horde.server.jobs import store
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.kinds.base import Accepted
from horde.server.jobs.models import JobState, RequestState
from horde.server.jobs.records import NewRequest, RequestRow
from horde.server.jobs.statements import NewRow, Queued
from horde.server.kudos import pricing, taxes
from horde.server.kudos import service as kudos
from horde.server.sharedkeys.service import SharedKeyRow
from horde.server.sharedkeys.spending import admit_key_holder, give_back, refund_shared_key, spend_through_key
from horde.server.state import Horde
from horde.server.styles import apply as styles
from horde.server.users.principal import Principal


async def _admit_client(horde: Horde, *, user: Principal, client_agent: str, ipaddr: str) -> None:
    """The refusals that depend on who and where the client is, not on what it asks (SEMANTICS 5)."""
    await horde.guard.check_maintenance()
    if client_agent in horde.settings.banned_client_agents:
        raise HordeError(RC.BannedClientAgent, "This client is banned from this horde. Please use another.")
    if user.deleted:
        raise HordeError(RC.DeletedUser, "This user has been deleted")
    await horde.guard.check_client(ipaddr)
    if horde.guard.modes.raid and not user.is_trusted and await horde.reputation.is_unsafe(ipaddr):
        raise HordeError(
            RC.UntrustedUnsafeIP, "This horde is refusing requests from untrusted users on unsafe IPs for now"
        )


async def submit_request(
    horde: Horde,
    *,
    kind: str,
    body: Any,
    user: Principal,
    client_agent: str,
    ipaddr: str,
    sharedkey: SharedKeyRow | None = None,
) -> Accepted:
    """Validate, price and queue a client's request; a dry run only prices it. Through a shared key,
    `user` is the key's owner, who pays; the key is charged the request's quote (ADR 0021)."""
    behaviour = KINDS[kind]
    user, sharedkey = await _key_holder(horde, kind, body, user, sharedkey)
    await _admit_client(horde, user=user, client_agent=client_agent, ipaddr=ipaddr)
    style = await styles.resolve(horde, kind=kind, body=body, user=user)
    if style is not None:
        body = style.body
        if sharedkey is None and (paying := await styles.paying_key(horde, style)) is not None:
            user, sharedkey = paying  # the style's shared key pays; its per-job caps do not apply
    screen = behaviour.screening(horde, body, user=user)
    if screen is not None and screen.prompt:
        body = behaviour.with_prompt(body, await screen_prompt(horde, screen, user=user, ipaddr=ipaddr))
    if getattr(body, "allow_downgrade", False) and not getattr(body, "dry_run", False):
        body = await _downgraded(horde, kind, body, user)
    new = await behaviour.prepare(horde, body, user=user)
    new.style_owner_id = style.owner_id if style is not None else None  # its share of the tax
    if getattr(body, "dry_run", False):
        return RequestAsync(kudos=_quote(new, user), message=DRY_RUN_NOTE)
    await _mark_unsafe_ip(horde, new, user=user, ipaddr=ipaddr)
    hold = await _upfront_hold(horde, kind, new, user)
    if hold:
        new.payload["held"] = hold  # settlement releases the hold when the last job ends
    new.upfront_covered = await _covered(horde, new, user, held=bool(hold))
    charge = _key_charge(new, user, sharedkey)
    now = horde.clock.now()
    ttl = behaviour.ttl(horde, new)
    limit = user.concurrency * behaviour.concurrency_factor
    if user.education:
        limit = max(limit, 200)
    row = NewRow(
        new=new, user_id=user.id, now=now, expires_at=now + horde.settings.request_expiry, ttl=ttl,
        client_agent=client_agent, ipaddr=ipaddr, limit=limit,
        count_models=list(new.models) if user.is_anon and new.models else None, hold=hold,
        floor=kudos.user_floor(user.id, user.oauth_id),
    )  # fmt: skip
    await _queue(horde, row, sharedkey=sharedkey, charge=charge, hold=hold, limit=limit)
    await _charge_activation(horde, new, user, now)
    horde.requests.remember(_as_stored(new, new.id, user_id=user.id, ttl=ttl, now=now))
    horde.snapshots.note_queued(kind, len(new.jobs))
    if style is not None:
        await styles.after_queued(horde, style)
    horde.notifier.work_added(kind)
    for hook in horde.accepted_hooks:
        await hook(user, ipaddr)
    return behaviour.accepted_body(new.id, new, possible=horde.snapshots.could_be_served(kind, new))


async def _key_holder(
    horde: Horde, kind: str, body: Any, user: Principal, sharedkey: SharedKeyRow | None
) -> tuple[Principal, SharedKeyRow | None]:
    """Whom a request acts as, and the key it spends (none: no key, or an emptied one fell back to
    the anonymous user)."""
    if sharedkey is None:
        return user, None
    user = await admit_key_holder(
        horde, sharedkey, user, usage=KINDS[kind].key_usage(body),
        allow_downgrade=bool(getattr(body, "allow_downgrade", False)),
    )  # fmt: skip
    return user, None if user.is_anon else sharedkey


def _key_charge(new: NewRequest, user: Principal, sharedkey: SharedKeyRow | None) -> int:
    """Hundredths the key pays: the request's quote (what a dry run answers), noted in its payload (a
    cancel gives back the quote of the jobs never handed out)."""
    if sharedkey is None:
        return 0
    charge = pricing.hundredths(_quote(new, user))
    new.payload.update(sharedkey=str(sharedkey.id), key_charge=charge)
    return charge


async def _queue(
    horde: Horde, row: NewRow, *, sharedkey: SharedKeyRow | None, charge: int, hold: int, limit: int
) -> None:
    """Charge the key (if any), then queue; a request then refused gives the key its charge back."""
    if sharedkey is not None:
        await spend_through_key(horde, sharedkey, amount=charge)
    try:
        _check_queued(await horde.statements.queue_request(row), hold=hold, limit=limit)
    except BaseException:
        if sharedkey is not None:
            await give_back(horde, sharedkey, amount=charge)
        raise


def _check_queued(queued: Queued, *, hold: int, limit: int) -> None:
    if queued.missing_worker is not None:
        raise HordeError(RC.WorkerNotFound, f"Worker with ID '{queued.missing_worker}' not found")
    if queued.short:
        raise _upfront_error(hold)
    if not queued.stored:
        raise HordeError(
            RC.TooManyPrompts,
            f"Parallel requests ({queued.queued}) exceeded user limit ({limit}). Please try again when your "
            "previous requests have completed",
        )


async def _mark_unsafe_ip(horde: Horde, new: NewRequest, *, user: Principal, ipaddr: str) -> None:
    """A request from an unsafe IP skips workers with `allow_unsafe_ipaddr=false` (`unsafe_ip`); an
    untrusted requester's also skips untrusted workers (`untrusted`, SEMANTICS.md 3.3)."""
    if not await horde.reputation.is_unsafe(ipaddr):
        return
    new.unsafe_ip = True
    if not user.is_trusted:
        new.trusted_workers = True


DRY_RUN_NOTE = (
    "An estimate, not a price: each job is charged for the model that serves it and what its worker "
    "returns, and the activation tax is included (ADR 0023)"
)


def _quote(new: NewRequest, user: Principal) -> float:
    """A dry run's answer: the kind's estimate (which counts the base activation tax of 1) with the rest
    of the activation tax."""
    legs = taxes.activation_legs(
        payer_id=user.id, extra_source_images=new.extra_source_images, style_owner_id=new.style_owner_id
    )
    tax = -sum(leg.amount for leg in legs if leg.user_id == user.id)
    return round(new.dry_run_kudos + pricing.kudos_of(tax) - taxes.ACTIVATION_TAX, 2)


async def _charge_activation(horde: Horde, new: NewRequest, user: Principal, now: float) -> None:
    """The activation tax of a stored request (SEMANTICS.md 4.4), never refunded."""
    legs = taxes.activation_legs(
        payer_id=user.id, extra_source_images=new.extra_source_images, style_owner_id=new.style_owner_id
    )
    async with horde.db.autocommit() as conn:
        await kudos.post(conn, legs=legs, reason="activation", ref=f"activation:{new.id}", now=now)


async def _covered(horde: Horde, new: NewRequest, user: Principal, *, held: bool) -> bool:
    """Whether the requester could pay `new` upfront now: what a worker's `require_upfront_kudos`
    matches (SEMANTICS.md 4.4; fixed at queueing, ADR 0023). Read only for untrusted registered users."""
    if held or user.is_trusted:
        return True
    if user.is_anon:
        return False
    async with horde.db.autocommit() as conn:
        available = await kudos.available_of(conn, user.id, floor=kudos.user_floor(user.id, user.oauth_id))
    return available >= new.kudos


async def _downgraded(horde: Horde, kind: str, body: Any, user: Principal) -> Any:
    """With `allow_downgrade`, a request that needs upfront kudos its requester cannot reserve is
    shrunk to what the horde gives away (SEMANTICS.md 4.4), judged as `_upfront_hold` judges it."""
    behaviour = KINDS[kind]
    probe = await behaviour.prepare(horde, body.model_copy(update={"dry_run": True}), user=user)
    threads, queued = await horde.snapshots.live_counts(kind)
    amount = behaviour.upfront(horde, probe, threads=threads, queued=queued)
    if amount is None:
        return body
    if not user.is_anon:
        async with horde.db.autocommit() as conn:
            floor = kudos.user_floor(user.id, user.oauth_id)
            if await kudos.available_of(conn, user.id, floor=floor) >= pricing.hundredths(amount):
                return body
    return behaviour.downgrade(horde, body, threads=threads, queued=queued)


async def _upfront_hold(horde: Horde, kind: str, new: NewRequest, user: Principal) -> int:
    """Hundredths `new` must reserve (0: none), judged on the live queue and online threads."""
    threads, queued = await horde.snapshots.live_counts(kind)
    amount = KINDS[kind].upfront(horde, new, threads=threads, queued=queued)
    if amount is None:
        return 0
    hold = max(pricing.hundredths(amount), 1)
    if user.is_anon:
        raise _upfront_error(hold)
    return hold


def _upfront_error(hold: int) -> HordeError:
    return HordeError(
        RC.KudosUpfront,
        "Due to heavy demand, requests this large, slow or with slow_workers=false need the kudos to pay "
        f"for them upfront: this request requires {pricing.kudos_of(hold)} kudos available to reserve",
    )


def _as_stored(new: NewRequest, request_id: uuid.UUID, *, user_id: int, ttl: float, now: float) -> RequestRow:
    """The request as `JobStatements.load_request` reads it back (the payload through JSON, as stored)."""
    return RequestRow(
        id=request_id, kind=new.kind, user_id=user_id, payload=json.loads(json.dumps(new.payload)),
        models=list(new.models), kudos=new.kudos, ttl=ttl, n=len(new.jobs), slow_workers=new.slow_workers,
        worker_blacklist=new.worker_blacklist, webhook=new.webhook, created_at=now, nsfw=new.nsfw,
    )  # fmt: skip


async def cancel_request(horde: Horde, *, kind: str, request_id: uuid.UUID) -> None:
    """Stop handing out the request's jobs; jobs workers hold may still be submitted."""
    async with horde.db.transaction() as conn:
        await conn.execute(
            update(store.requests)
            .where(store.requests.c.id == request_id, store.requests.c.state == RequestState.ACTIVE)
            .values(state=RequestState.CANCELLED)
        )
        dropped = await conn.execute(
            update(store.jobs)
            .where(store.jobs.c.request_id == request_id, store.jobs.c.state == JobState.QUEUED)
            .values(state=JobState.CANCELLED, finished_at=horde.clock.now())
            .returning(store.jobs.c.id)
        )
        # what a worker still holds is charged without the hold (as the reference's debits are)
        await kudos.release_holds(conn, [kudos.hold_ref(request_id)])
        await _refund_key(conn, request_id, dropped=len(dropped.all()), now=horde.clock.now())
    horde.notifier.request_changed(request_id)


async def _refund_key(conn: AsyncConnection, request_id: uuid.UUID, *, dropped: int, now: float) -> None:
    """Give a shared key back the quote of a cancelled request's jobs never handed out (ADR 0021)."""
    found = (
        await conn.execute(
            select(store.requests.c.payload, store.requests.c.n).where(store.requests.c.id == request_id)
        )
    ).first()
    if found is None or not (dropped and found.payload.get("sharedkey")):
        return
    payload, n = found.payload, max(int(found.n), 1)
    refund = int(payload["key_charge"]) * min(dropped, n) // n
    await refund_shared_key(conn, key_id=uuid.UUID(payload["sharedkey"]), amount=refund, now=now)


async def shrink_queued(conn: AsyncConnection, *, horde: Horde) -> int:
    """Maintenance: no queued job will be handed out any more; the requests stay active, so jobs
    workers hold finish and their requests complete with what was done. Returns the jobs dropped."""
    dropped = (
        await conn.execute(
            update(store.jobs)
            .where(store.jobs.c.state == JobState.QUEUED)
            .values(state=JobState.CANCELLED, finished_at=horde.clock.now())
            .returning(store.jobs.c.request_id)
        )
    ).all()
    request_ids = {row.request_id for row in dropped}

    def notify() -> None:
        for request_id in request_ids:
            horde.notifier.request_changed(request_id)

    after_commit(conn, notify)
    return len(dropped)
