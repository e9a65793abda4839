"""Plain data passed between the jobs service, the per-kind behaviour and the matching query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class WorkerProfile:
    """What a popping worker can take: its declaration on this pop plus facts from the server."""

    worker_id: uuid.UUID
    owner_id: int
    kind: str
    owner_trusted: bool = False
    models: frozenset[str] = frozenset()
    nsfw: bool = True
    caps: int = 0
    blacklist: tuple[str, ...] = ()
    max_pixels: int = 512 * 512
    max_length: int = 512
    max_context_length: int = 2048
    forms: frozenset[str] = frozenset()
    max_tiles: int = 80
    slow: bool = False
    extra_slow: bool = False
    amount: int = 1
    threads: int = 1
    speed: float = 1.0
    allow_unsafe_ip: bool = True
    limit_max_steps: bool = False
    softprompts: tuple[str, ...] = ()  # lowercased; "" serves any softprompt (by leaving it out)
    serves_special: bool = False  # declares a `horde_special::` model: no any-model requests
    require_upfront_kudos: bool = False  # only requests their requester could pay upfront (ADR 0023)


@dataclass(slots=True)
class JobSpec:
    seed: int | None = None
    form: str | None = None


@dataclass(slots=True)
class NewRequest:
    """A validated, priced request ready to be stored by the jobs service."""

    kind: str
    payload: dict[str, Any]
    jobs: list[JobSpec]
    kudos: int  # per-job price in hundredths
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    prompt: str = ""
    pixels: int = 0
    max_length: int = 0
    max_context_length: int = 0
    tiles: int = 0
    nsfw: bool = False
    trusted_workers: bool = False
    slow_workers: bool = True
    extra_slow_workers: bool = False
    worker_blacklist: bool = False
    worker_ids: list[uuid.UUID] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    required_caps: int = 0
    webhook: str | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)
    dry_run_kudos: float = 0.0
    over_average_steps: bool = False  # more steps than the mean of a requested model's min and max
    softprompt: str = ""
    unsafe_ip: bool = False  # sent from an IP the reputation lookup calls unsafe
    upfront_covered: bool = True  # set when queued: the requester could pay upfront (ADR 0023)
    extra_source_images: int = 0  # each adds to the activation tax (SEMANTICS.md 4.4)
    style_owner_id: int | None = None  # the owner of the style used: the styles domain sets it


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """One queued request as the snapshot and the Python predicate see it."""

    id: uuid.UUID
    user_id: int
    priority_key: float
    queued: int
    pixels: int
    max_length: int
    max_context_length: int
    tiles: int
    nsfw: bool
    trusted_workers: bool
    slow_workers: bool
    extra_slow_workers: bool
    worker_blacklist: bool
    worker_ids: frozenset[uuid.UUID]
    any_model: bool
    models: frozenset[str]
    forms: frozenset[str]
    required_caps: int
    prompt: str
    things: float  # per job: megapixelsteps, tokens or forms
    over_average_steps: bool = False
    softprompt: str = ""
    unsafe_ip: bool = False
    upfront_covered: bool = True

    def signature(self) -> tuple[Any, ...]:
        """What matching depends on, except identity, order and the prompt (blacklists are checked per
        request where a worker has one, so requests group by this and groups stay few)."""
        return (
            self.pixels, self.max_length, self.max_context_length, self.tiles, self.nsfw,
            self.trusted_workers, self.slow_workers, self.extra_slow_workers, self.worker_blacklist,
            self.worker_ids, self.any_model, self.models, self.forms, self.required_caps,
            self.over_average_steps, self.softprompt, self.unsafe_ip, self.upfront_covered,
        )  # fmt: skip


@dataclass(slots=True)
class ClaimedJob:
    id: uuid.UUID
    request_id: uuid.UUID
    seed: int | None
    form: str | None
    model: str | None
    position: int


@dataclass(slots=True)
class RequestRow:
    """The parts of a stored request that pop, submit and status need (immutable once stored)."""

    id: uuid.UUID
    kind: str
    user_id: int
    payload: dict[str, Any]
    models: list[str]
    kudos: int
    ttl: float
    n: int
    slow_workers: bool
    worker_blacklist: bool
    webhook: str | None
    created_at: float
    nsfw: bool


@dataclass(slots=True)
class SubmitOutcome:
    """What a kind makes of a worker's submit: the stored result and the money."""

    result: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    reward: float = 0.0  # kudos to the worker (before the bridge multiplier)
    burn: float = 0.0  # kudos the requester pays
    things: float = 0.0  # megapixelsteps, tokens or forms, for worker stats
    faulted: bool = False
    problem: bool = False  # reported as CSAM: a problem-job record is kept (jobs/problems.py)


@dataclass(frozen=True, slots=True)
class StyleTemplate:
    """What a style sets on a request that names it (SEMANTICS.md 8): the prompt template, the params
    it sets (only those) and its models."""

    prompt: str
    params: dict[str, Any]
    models: list[str]
