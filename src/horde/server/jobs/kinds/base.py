"""The per-kind behaviour every kind implements (the only place that knows how kinds differ)."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement

from horde.server.jobs.records import NewRequest, QueuedRequest, WorkerProfile
from horde.server.state import Horde
from horde.server.users.principal import Principal
from horde.server.workers.models import Worker


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


NO_WORKER_MESSAGE = "Warning: No available workers can fulfill this request. It will expire in 20 minutes"


class Kind(ABC):
    """What is particular to image, text or alchemy work."""

    name: str
    api_type: str
    always_skipped_keys: tuple[str, ...] = ()
    batch_across_requests = False  # alchemy pops `amount` forms of any requests at once
    concurrency_factor = 1  # alchemy counts forms: its cap is ten times the user's (SEMANTICS.md 3.2)

    @abstractmethod
    async def prepare(self, horde: Horde, body: Any, *, user: Principal) -> NewRequest:
        """Validate a client's request (rc errors), price it and split it into jobs; no database."""

    @abstractmethod
    def sql_filters(self, w: WorkerProfile) -> list[ColumnElement[bool]]:
        """This kind's conditions of the claim, besides the shared ones (`filters.common_filters`)."""

    @abstractmethod
    def sql_params(self, w: WorkerProfile) -> dict[str, object]:
        """The values of the bind parameters `sql_filters` uses."""

    def sql_shape(self, w: WorkerProfile) -> tuple[object, ...]:
        """What in `w` changes the structure of `sql_filters` (the claim statement is cached by it)."""
        return ()

    @abstractmethod
    def skip_reason(self, q: QueuedRequest, w: WorkerProfile) -> str | None:
        """The Python twin of the claim: the `skipped` key keeping `w` from `q`, or None."""

    def accepted_body(self, request_id: uuid.UUID, new: NewRequest, *, possible: bool) -> dict[str, Any]:
        """The answer to an accepted request (202)."""
        body: dict[str, Any] = {"id": str(request_id), "kudos": round(new.kudos / 100)}
        warnings = list(new.warnings)
        if not possible:
            warnings.append(
                {"code": "NoAvailableWorker", "message": "No worker online can serve this request now"}
            )
            body["message"] = NO_WORKER_MESSAGE
        if warnings:
            body["warnings"] = warnings
        return body

    @abstractmethod
    def ttl(self, horde: Horde, new: NewRequest) -> float:
        """Seconds a worker has for one job of this request."""

    @abstractmethod
    def profile(
        self, horde: Horde, worker: dict[str, Any], *, owner_trusted: bool, amount: int
    ) -> WorkerProfile:
        """What a worker can take, from its record (which holds its latest check-in)."""

    @abstractmethod
    async def pop_body(
        self, horde: Horde, request: RequestRow, jobs: list[ClaimedJob], profile: WorkerProfile
    ) -> dict[str, Any]:
        """The pop response for a batch of claimed jobs of one request."""

    @abstractmethod
    async def accept(
        self, horde: Horde, body: Any, *, request: RequestRow, job: dict[str, Any], worker: Worker
    ) -> SubmitOutcome:
        """Store what the worker sent (off the database) and price it."""

    @abstractmethod
    async def generation(self, horde: Horde, request: RequestRow, job: dict[str, Any]) -> dict[str, Any]:
        """One finished job as the status endpoint shows it."""

    async def status_body(
        self,
        horde: Horde,
        request: RequestRow,
        jobs: list[dict[str, Any]],
        *,
        summary: dict[str, Any],
        full: bool,
    ) -> dict[str, Any]:
        """The status (or, with `full=False`, check) body from the job counts and the finished jobs."""
        if not full:
            return summary
        done = [job for job in jobs if job["state"] == "done"]
        return {**summary, "generations": [await self.generation(horde, request, job) for job in done]}

    def upload_bounds(self, payload: dict[str, Any], form: str | None) -> tuple[int, int] | None:
        """The largest (width, height) of a result image a worker may upload for a job, or None when
        the job's result is no image."""
        return None

    def things(self, payload: dict[str, Any]) -> float:
        """Work in one job: megapixelsteps (image), tokens (text) or forms (alchemy)."""
        return 1.0

    def batch_size(self, request: RequestRow, profile: WorkerProfile) -> int:
        """How many jobs of one request a pop may take together."""
        if request.payload.get("disable_batching"):
            return 1
        return profile.amount

    def merge_pop_bodies(self, bodies: list[dict[str, Any]]) -> dict[str, Any]:
        return bodies[0]

    def empty_pop_body(self, skipped: dict[str, int]) -> dict[str, Any]:
        # horde-sdk requires `payload` even when there is no job (SEMANTICS.md 1.1)
        return {"payload": {}, "id": None, "ids": [], "skipped": skipped, "messages": []}

    @abstractmethod
    def worker_config(self, body: Any) -> dict[str, Any]:
        """The per-kind check-in fields stored on the worker record."""
