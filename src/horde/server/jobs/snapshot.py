"""A per-node picture of the queue and the online workers, at most `snapshot_max_age` old.

It answers, at a bounded cost, what the reference computes with queue scans: the `skipped` counts of
an empty pop, `queue_position`, `wait_time`, `is_possible`, and whether a user has queued work (so the
pop tries owner and `priority_usernames` requests first only when there are some). Requests that match
the same workers are grouped; predicates are evaluated per (group, worker) once per snapshot.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.db import Database
from horde.server.jobs.matching import NOT_REPORTED, skip_reason
from horde.server.jobs.models import Job, JobState, Request, RequestModel, RequestWorker
from horde.server.jobs.records import NewRequest, QueuedRequest, WorkerProfile
from horde.server.kit.clock import Clock
from horde.server.kit.orm import table, utc
from horde.server.users.models import User
from horde.server.workers.models import Worker

log = logging.getLogger(__name__)
jobs = table(Job)
requests = table(Request)
request_models = table(RequestModel)
request_workers = table(RequestWorker)
workers_t = table(Worker)
users_t = table(User)

STALE_AFTER = 10.0  # seconds after which a snapshot is not used without a refresh
REFRESH_AHEAD = 0.8  # share of max_age from which a request starts a background refresh
ProfileOf = Callable[[dict[str, Any]], WorkerProfile]
ThingsOf = Callable[[str, dict[str, Any]], float]


def _quiet(refresh: asyncio.Future[KindSnapshot]) -> None:
    """A refresh ahead that failed: the next request past max_age refreshes (and raises) itself."""
    if not refresh.cancelled() and refresh.exception() is not None:
        log.warning("queue snapshot refresh failed: %s", refresh.exception())


@dataclass
class KindSnapshot:
    """The queue of one kind in priority order, grouped by matching signature."""

    taken_at: float
    version: int = 0  # the notifier's work version when the snapshot began to read
    queue: list[QueuedRequest] = field(default_factory=list)
    index: dict[uuid.UUID, int] = field(default_factory=dict)
    groups: dict[tuple[object, ...], list[int]] = field(default_factory=dict)
    queued_users: set[int] = field(default_factory=set)
    online: list[WorkerProfile] = field(default_factory=list)
    _masks: dict[tuple[object, ...], int] = field(default_factory=dict)
    _skipped: dict[WorkerProfile, dict[str, int]] = field(default_factory=dict)
    _fits: dict[WorkerProfile, bool] = field(default_factory=dict)

    def has_work_for(self, profile: WorkerProfile) -> bool:
        """Whether any queued request could go to this worker (the claim's conditions, in Python)."""
        fits = self._fits.get(profile)
        if fits is None:
            fits = False
            for members in self.groups.values():
                reason = skip_reason(self.queue[members[0]], profile)
                if reason == "blacklist" or (reason is None and profile.blacklist):
                    fits = any(skip_reason(self.queue[i], profile) is None for i in members)
                else:
                    fits = reason is None
                if fits:
                    break
            self._fits[profile] = fits
        return fits

    def mask(self, q: QueuedRequest) -> int:
        """Bit i set when online worker i could take requests like `q` (blacklists aside)."""
        key = q.signature()
        cached = self._masks.get(key)
        if cached is None:
            cached = 0
            for i, worker in enumerate(self.online):
                if skip_reason(q, worker) is None:
                    cached |= 1 << i
            self._masks[key] = cached
        return cached

    def skipped(self, profile: WorkerProfile) -> dict[str, int]:
        cached = self._skipped.get(profile)
        if cached is None:
            counts: Counter[str] = Counter()
            for members in self.groups.values():
                reason = skip_reason(self.queue[members[0]], profile)
                if reason == "blacklist" or (reason is None and profile.blacklist):
                    for i in members:  # blacklist words depend on each prompt
                        q = self.queue[i]
                        r = skip_reason(q, profile)
                        if r and r not in NOT_REPORTED:
                            counts[r] += 1
                elif reason and reason not in NOT_REPORTED:
                    counts[reason] += len(members)
            cached = self._skipped[profile] = dict(counts)
        return dict(cached)

    def position(self, request_id: uuid.UUID) -> tuple[int, float, bool]:
        """(queue_position, things queued ahead including its own, whether an online worker fits)."""
        i = self.index.get(request_id)
        if i is None:
            return 0, 0.0, False
        q = self.queue[i]
        mask = self.mask(q)
        if not mask:
            return i + 1, 0.0, False
        ahead = 0
        things = q.things * q.queued
        for members in self.groups.values():
            if self.mask(self.queue[members[0]]) & mask:
                cut = bisect.bisect_left(members, i)
                ahead += cut
                things += sum(self.queue[m].things * self.queue[m].queued for m in members[:cut])
        return ahead + 1, things, True

    def capacity(self, request_id: uuid.UUID) -> float:
        """Things per second the online workers able to serve this request deliver together."""
        i = self.index.get(request_id)
        if i is None:
            return 0.0
        mask = self.mask(self.queue[i])
        return sum(w.speed * w.threads for bit, w in enumerate(self.online) if mask >> bit & 1)


class Snapshots:
    """Refreshes each kind's snapshot on demand, once per `max_age`, one refresh at a time."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        max_age: float,
        online_window: float,
        profile_of: ProfileOf,
        things_of: ThingsOf,
        version_of: Callable[[str], int] = lambda _kind: 0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.max_age = max_age
        self.online_window = online_window
        self.profile_of = profile_of
        self.things_of = things_of
        self.version_of = version_of
        self._snaps: dict[str, KindSnapshot] = {}
        self._taking: dict[str, asyncio.Future[KindSnapshot]] = {}
        self._known: defaultdict[str, dict[uuid.UUID, QueuedRequest]] = defaultdict(dict)
        self._counts: dict[str, tuple[float, int, int]] = {}  # kind: (counted at, threads, queued)
        self.refreshes_awaited = 0  # requests that waited for a refresh (the regression guard counts)

    def invalidate(self) -> None:
        self._snaps.clear()
        self._counts.clear()

    async def close(self) -> None:
        """Stop refreshes in flight (the database is about to close)."""
        for taking in list(self._taking.values()):
            taking.cancel()
        await asyncio.gather(*self._taking.values(), return_exceptions=True)

    def current(self, kind: str) -> KindSnapshot | None:
        return self._snaps.get(kind)

    async def get(self, kind: str) -> KindSnapshot:
        """A snapshot at most `max_age` old, or the previous one while a refresh is in flight. Under
        steady traffic it is refreshed ahead (from 80 % of its age on, in the background), so requests
        seldom wait for a refresh; and while one runs, requests answer from the snapshot it replaces
        (at most `STALE_AFTER` old) instead of all waiting for it (ADR 0013): only a request that finds
        no usable snapshot and no refresh running waits."""
        snap = self._snaps.get(kind)
        taking = self._taking.get(kind)
        if snap is not None:
            age = self.clock.now() - snap.taken_at
            if age < self.max_age:
                if age >= REFRESH_AHEAD * self.max_age and taking is None:
                    self._start(kind).add_done_callback(_quiet)
                return snap
            if taking is not None and age < STALE_AFTER:
                return snap
        # One refresh at a time per kind, and every request that needs it waits for that same one:
        # they all wake together when it ends (waiting in turn on a lock made a convoy under load).
        self.refreshes_awaited += 1
        return await asyncio.shield(taking or self._start(kind))

    def _start(self, kind: str) -> asyncio.Future[KindSnapshot]:
        taking = self._taking[kind] = asyncio.ensure_future(self._refresh(kind))
        return taking

    async def _refresh(self, kind: str) -> KindSnapshot:
        try:
            snap = self._snaps[kind] = await self._take(kind)
            return snap
        finally:
            del self._taking[kind]

    def _recent(self, kind: str) -> KindSnapshot | None:
        """The last snapshot if it is recent enough to trust without refreshing it."""
        snap = self._snaps.get(kind)
        if snap is None or self.clock.now() - snap.taken_at > STALE_AFTER:
            return None
        return snap

    async def live_counts(self, kind: str) -> tuple[int, int]:
        """(threads of online workers, queued jobs) of a kind, for the upfront-kudos free size: from a
        recent snapshot, else counted (without taking a snapshot: creations do not need the rest) at
        most once per `max_age`, as fresh as a snapshot (counting on every creation cost two thirds of
        queuing one while no worker popped, and the count of queued jobs grows with the queue)."""
        snap = self._recent(kind)
        if snap is not None:
            return sum(w.threads for w in snap.online), sum(q.queued for q in snap.queue)
        now = self.clock.now()
        counted = self._counts.get(kind)
        if counted is not None and now - counted[0] < self.max_age:
            return counted[1], counted[2]
        online = utc(now - self.online_window)
        async with self.db.autocommit() as conn:
            threads = await conn.scalar(
                select(func.coalesce(func.sum(workers_t.c.threads), 0)).where(
                    workers_t.c.kind == kind,
                    workers_t.c.last_check_in >= online,
                    workers_t.c.paused.is_(False),
                )
            )
            queued = await conn.scalar(
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.kind == kind, jobs.c.state == JobState.QUEUED)
            )
        self._counts[kind] = (now, int(threads or 0), int(queued or 0))
        return int(threads or 0), int(queued or 0)

    def note_queued(self, kind: str, jobs: int) -> None:
        """This node queued `jobs` jobs: the counted queue grows by them until it is counted again."""
        counted = self._counts.get(kind)
        if counted is not None:
            self._counts[kind] = (counted[0], counted[1], counted[2] + jobs)

    def has_queued(self, kind: str, user_id: int) -> bool:
        """Whether a recent snapshot saw queued work of this user (True when there is none to ask)."""
        snap = self._recent(kind)
        return snap is None or user_id in snap.queued_users

    async def nothing_for(self, kind: str, profile: WorkerProfile) -> bool:
        """True when a snapshot at most `max_age` old proves that no queued job fits this worker and
        this node has heard of no work of this kind added since it was taken: the pop needs no claim.
        Work added on another node without a relay is seen at the next refresh, within `max_age` plus
        the time that refresh takes."""
        snap = await self.get(kind)
        return snap.version == self.version_of(kind) and not snap.has_work_for(profile)

    async def skipped(self, kind: str, profile: WorkerProfile) -> dict[str, int]:
        return (await self.get(kind)).skipped(profile)

    def could_be_served(self, kind: str, new: NewRequest) -> bool:
        snap = self._recent(kind)
        if snap is None:
            return True
        probe = queued_from_new(new)
        return any(skip_reason(probe, w) is None for w in snap.online)

    async def _take(self, kind: str) -> KindSnapshot:
        now = self.clock.now()
        version = self.version_of(kind)  # before reading: work added from here on changes the version
        async with self.db.autocommit() as conn:
            queue = await load_queue(conn, kind, self.things_of, self._known[kind])
            rows = (
                await conn.execute(
                    select(workers_t, (users_t.c.trusted | users_t.c.moderator).label("owner_trusted"))
                    .join(users_t, users_t.c.id == workers_t.c.user_id)
                    .where(
                        workers_t.c.kind == kind,
                        workers_t.c.last_check_in >= utc(now - self.online_window),
                        workers_t.c.paused.is_(False),
                    )
                )
            ).all()
        snap = KindSnapshot(taken_at=now, version=version, queue=queue)
        snap.online = [self.profile_of(dict(r._mapping)) for r in rows]
        for i, q in enumerate(queue):
            snap.index[q.id] = i
            snap.groups.setdefault(q.signature(), []).append(i)
            snap.queued_users.add(q.user_id)
        return snap


def queued_from_new(new: NewRequest) -> QueuedRequest:
    return QueuedRequest(
        id=uuid.uuid4(), user_id=0, priority_key=0.0, queued=len(new.jobs), pixels=new.pixels,
        max_length=new.max_length, max_context_length=new.max_context_length, tiles=new.tiles,
        nsfw=new.nsfw, trusted_workers=new.trusted_workers, slow_workers=new.slow_workers,
        extra_slow_workers=new.extra_slow_workers, worker_blacklist=new.worker_blacklist,
        worker_ids=frozenset(new.worker_ids), any_model=not new.models, models=frozenset(new.models),
        forms=frozenset(j.form for j in new.jobs if j.form), required_caps=new.required_caps,
        prompt=new.prompt, things=0.0, over_average_steps=new.over_average_steps,
        softprompt=new.softprompt, unsafe_ip=new.unsafe_ip, upfront_covered=new.upfront_covered,
    )  # fmt: skip


async def load_queue(
    conn: AsyncConnection, kind: str, things: ThingsOf, known: dict[uuid.UUID, QueuedRequest]
) -> list[QueuedRequest]:
    """Every request of `kind` with queued jobs, in priority order.

    `known` keeps the requests seen by earlier loads (a stored request never changes, only its queued
    jobs do), so a refresh costs one grouped query over the queued jobs plus the details of the
    requests that are new since the last one; it is updated in place.
    """
    counted = await conn.execute(
        select(jobs.c.request_id, jobs.c.form, func.count())
        .where(jobs.c.state == JobState.QUEUED, jobs.c.kind == kind)
        .group_by(jobs.c.request_id, jobs.c.form)
    )
    queued: dict[uuid.UUID, int] = {}
    forms: defaultdict[uuid.UUID, set[str]] = defaultdict(set)
    for rid, form, n in counted:
        queued[rid] = queued.get(rid, 0) + n
        if form is not None:
            forms[rid].add(form)
    for gone in [rid for rid in known if rid not in queued]:
        del known[gone]
    missing = [rid for rid in queued if rid not in known]
    for chunk in (missing[i : i + 500] for i in range(0, len(missing), 500)):
        for q in await _details(conn, kind, chunk, things):
            known[q.id] = q
    out: list[QueuedRequest] = []
    for rid, n in queued.items():
        found = known.get(rid)
        if found is None:
            continue  # expired between the two queries
        q = found
        now_forms = frozenset(forms[rid]) if rid in forms else frozenset()
        if q.queued != n or q.forms != now_forms:
            q = known[rid] = replace(q, queued=n, forms=now_forms)
        out.append(q)
    out.sort(key=_priority_order)
    return out


def _priority_order(q: QueuedRequest) -> tuple[float, int]:
    return -q.priority_key, q.id.int


async def _details(
    conn: AsyncConnection, kind: str, ids: list[uuid.UUID], things: ThingsOf
) -> list[QueuedRequest]:
    """The matching attributes of these requests (their queued counts and forms are left empty)."""
    rows = (await conn.execute(select(requests).where(requests.c.id.in_(ids)))).all()
    models: defaultdict[uuid.UUID, set[str]] = defaultdict(set)
    targets: defaultdict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for rid, model in await conn.execute(
        select(request_models.c.request_id, request_models.c.model).where(
            request_models.c.request_id.in_(ids)
        )
    ):
        models[rid].add(model)
    for rid, wid in await conn.execute(
        select(request_workers.c.request_id, request_workers.c.worker_id).where(
            request_workers.c.request_id.in_(ids)
        )
    ):
        targets[rid].add(wid)
    return [
        QueuedRequest(
            id=r.id, user_id=r.user_id, priority_key=r.priority_key, queued=0, pixels=r.pixels,
            max_length=r.max_length, max_context_length=r.max_context_length, tiles=r.tiles,
            nsfw=r.nsfw, trusted_workers=r.trusted_workers, slow_workers=r.slow_workers,
            extra_slow_workers=r.extra_slow_workers, worker_blacklist=r.worker_blacklist,
            worker_ids=frozenset(targets[r.id]), any_model=r.any_model, models=frozenset(models[r.id]),
            forms=frozenset(), required_caps=r.required_caps, prompt=r.prompt,
            things=things(kind, r.payload), over_average_steps=r.over_average_steps,
            softprompt=r.softprompt, unsafe_ip=r.unsafe_ip, upfront_covered=r.upfront_covered,
        )
        for r in rows
    ]  # fmt: skip
