"""The per-kind behaviour every kind implements (the only place that knows how kinds differ)."""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel, ValidationError

from horde.contract import RequestAsync, RequestInterrogationResponse
from horde.contract.common import HordeModel, RequestSingleWarning
from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.filters.prompt import PromptScreen
from horde.server.jobs.matching import ACROSS_REQUESTS
from horde.server.jobs.records import (
    ClaimedJob,
    NewRequest,
    RequestRow,
    StyleTemplate,
    SubmitOutcome,
    WorkerProfile,
)
from horde.server.resources import Resources
from horde.server.users.principal import Principal
from horde.server.workers.models import Worker

Accepted = RequestAsync | RequestInterrogationResponse
NO_WORKER_MESSAGE = "Warning: No available workers can fulfill this request. It will expire in 20 minutes"
STYLE_PLACEHOLDER = re.compile(r"\{(p|np)\}")


class Kind(ABC):
    """What is particular to image, text or alchemy work."""

    name: str
    api_type: str
    always_skipped_keys: tuple[str, ...] = ()
    full_status: type[HordeModel]  # the contract model of the full status (and of a cancel's answer)
    concurrency_factor = 1  # alchemy counts forms: its cap is ten times the user's (SEMANTICS.md 3.2)
    credits_teams = False  # whether a job's kudos, things and fulfilment count for the worker's team

    style_params: type[BaseModel] | None = None  # the params a style of this kind sets (None: no styles)
    style_keeps: frozenset[str] = frozenset()  # params a request keeps when its style does not set them

    @property
    def batch_across_requests(self) -> bool:
        """Whether a pop takes `amount` jobs of any requests (alchemy forms) instead of one request's."""
        return self.name in ACROSS_REQUESTS

    @abstractmethod
    async def prepare(self, horde: Resources, body: Any, *, user: Principal) -> NewRequest:
        """Validate a client's request (rc errors), price it and split it into jobs; no database."""

    def screening(self, horde: Resources, body: Any, *, user: Principal) -> PromptScreen | None:
        """The prompt of a client's request to screen with the filters (SEMANTICS.md 8), or None."""
        return None

    def style_prompt(self, prompt: str, template: str) -> str:
        """A style's template filled with the request's prompt (`{p}`; `{np}`: no negative prompt)."""
        values = {"p": prompt, "np": ""}
        return STYLE_PLACEHOLDER.sub(lambda m: values[m.group(1)], template)

    def with_style(self, body: Any, style: StyleTemplate) -> Any:
        """The request as its style makes it (SEMANTICS.md 8): the template filled, the style's models,
        and every param a style may set taken from the style (its default when the style leaves it
        unset, except `style_keeps`); params no style sets (`n`, seeds, lengths) stay the request's."""
        if self.style_params is None:
            raise HordeError(RC.BadRequest, f"{self.name} requests take no style")
        settable = set(self.style_params.model_fields)
        own = body.params.model_dump(by_alias=False, exclude_unset=True)
        kept = {
            k: v
            for k, v in own.items()
            if k not in settable or (k in self.style_keeps and k not in style.params)
        }
        try:
            params = type(body.params).model_validate({**kept, **style.params})
        except ValidationError as exc:
            raise HordeError(
                RC.BadRequest, f"The style's params do not fit this request: {exc.errors()[0]['msg']}"
            ) from None
        prompt = self.style_prompt(body.prompt, style.prompt)
        return body.model_copy(update={"prompt": prompt, "params": params, "models": list(style.models)})

    def with_prompt(self, body: Any, prompt: str) -> Any:
        """The request with its prompt as screening left it."""
        return body.model_copy(update={"prompt": prompt})

    def accepted_body(self, request_id: uuid.UUID, new: NewRequest, *, possible: bool) -> Accepted:
        """The answer to an accepted request (202)."""
        warnings = [RequestSingleWarning.model_validate(w) for w in new.warnings]
        if not possible:
            warnings.append(
                RequestSingleWarning(
                    code="NoAvailableWorker", message="No worker online can serve this request now"
                )
            )
        return RequestAsync(
            id=str(request_id), kudos=round(new.kudos / 100), message=None if possible else NO_WORKER_MESSAGE,
            warnings=warnings or None,
        )  # fmt: skip

    def key_usage(self, body: Any) -> tuple[int, int, int]:
        """What one job of `body` asks of a shared key's per-job limits: (pixels, steps, tokens)."""
        return (0, 0, 0)

    def upfront(self, horde: Resources, new: NewRequest, *, threads: int, queued: int) -> float | None:
        """The kudos `new` must reserve before it is queued (SEMANTICS.md 4.4 upfront kudos), or None
        when it fits what the horde gives away; `threads` online and `queued` jobs of this kind."""
        return None

    def downgrade(self, horde: Resources, body: Any, *, threads: int, queued: int) -> Any:
        """`body` shrunk to what the horde gives away without upfront kudos (`allow_downgrade`)."""
        return body

    @abstractmethod
    def ttl(self, horde: Resources, new: NewRequest) -> float:
        """Seconds a worker has for one job of this request."""

    @abstractmethod
    def profile(
        self, horde: Resources, worker: dict[str, Any], *, owner_trusted: bool, amount: int
    ) -> WorkerProfile:
        """What a worker can take, from its record (which holds its latest check-in)."""

    @abstractmethod
    async def pop_body(
        self, horde: Resources, request: RequestRow, jobs: list[ClaimedJob], profile: WorkerProfile
    ) -> dict[str, Any]:
        """The pop response for a batch of claimed jobs of one request."""

    @abstractmethod
    async def accept(
        self, horde: Resources, body: Any, *, request: RequestRow, job: dict[str, Any], worker: Worker
    ) -> SubmitOutcome:
        """Store what the worker sent (off the database) and price it."""

    @abstractmethod
    async def generation(self, horde: Resources, request: RequestRow, job: dict[str, Any]) -> dict[str, Any]:
        """One finished job as the status endpoint shows it."""

    async def status_body(
        self,
        horde: Resources,
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

    def worker_models(self, horde: Resources, models: list[str], *, owner: Principal) -> list[str]:
        """The models a popping worker declared, as the horde records them (SEMANTICS.md 3.3.3)."""
        return models

    @abstractmethod
    def uptime_reward(self, horde: Resources, worker: dict[str, Any]) -> float:
        """Kudos a worker of this kind earns per uptime period (SEMANTICS.md 4.5), from its record."""

    @abstractmethod
    def performance(self, speed: float) -> str:
        """WorkerDetails.performance for a worker of this kind with this speed."""

    @abstractmethod
    def worker_fields(self, worker: Worker) -> dict[str, Any]:
        """This kind's own WorkerDetails fields, from the worker's record."""

    @abstractmethod
    def worker_config(self, body: Any) -> dict[str, Any]:
        """The per-kind check-in fields stored on the worker record."""
