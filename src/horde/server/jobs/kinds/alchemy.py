"""Alchemy (interrogation): captions, NSFW checks, upscalers, face fixers, background strip.

Forms are jobs of their own; a pop takes up to `amount` forms of any requests at once.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from horde.contract import (
    InterrogationPopInput,
    InterrogationStatus,
    InterrogationSubmitInput,
    ModelInterrogationInputStable,
    RequestInterrogationResponse,
)
from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.images.sources import is_url, load_source_as_is
from horde.server.jobs.kinds.base import NO_WORKER_MESSAGE, Accepted, Kind
from horde.server.jobs.kinds.common import base_profile, check_webhook, common_config, with_caps
from horde.server.jobs.kinds.image_checks import NEW_POST_PROCESSORS
from horde.server.jobs.records import (
    ClaimedJob,
    JobSpec,
    NewRequest,
    RequestRow,
    SubmitOutcome,
    WorkerProfile,
)
from horde.server.kudos import pricing
from horde.server.resources import Resources
from horde.server.users.principal import Principal
from horde.server.workers.capabilities import Cap
from horde.server.workers.models import Worker

MAX_TILES = 255
MAX_SIDE = 16383  # the largest side WebP holds: results of this size must still be storable
UPSCALE = 4  # the largest factor of an upscaler form
IMAGE_FORMS = pricing.UPSCALERS | {"GFPGAN", "GFPGANv1.3", "CodeFormers", "RestoreFormer", "strip_background"}


def tiles_of(width: int, height: int) -> int:
    return math.ceil(width / 512) * math.ceil(height / 512)


class AlchemyKind(Kind):
    name = "alchemy"
    api_type = "interrogation"
    full_status = InterrogationStatus
    concurrency_factor = 10

    async def prepare(self, horde: Resources, body: Any, *, user: Principal) -> NewRequest:
        assert isinstance(body, ModelInterrogationInputStable)
        forms = {form.name: form.payload or {} for form in body.forms}  # duplicates dropped
        if not forms:
            raise HordeError(RC.BadRequest, "At least one form is required")
        webhook = await check_webhook(horde, body.webhook)
        new = NewRequest(kind=self.name, payload={}, jobs=[JobSpec(form=f) for f in forms], kudos=0)
        # stored as it came, never decoded here: only its header is read and checked (ADR 0010)
        data, header = await load_source_as_is(
            horde.http, body.source_image, horde.source_policy, owner=user.id
        )
        tiles = tiles_of(header.width, header.height)
        if tiles > MAX_TILES or max(header.width, header.height) > MAX_SIDE:
            raise HordeError(
                RC.SourceImageResolutionExceeded, f"The image is {tiles} tiles; at most {MAX_TILES}"
            )
        source: dict[str, Any] = {"source_url": body.source_image} if is_url(body.source_image) else {}
        if not source:
            key = f"{new.id}_src.{header.format.lower()}"
            await horde.storage.put(key, data)
            source = {"source_key": key}
        needs_new = any(f in NEW_POST_PROCESSORS for f in forms)
        new.payload = {
            "forms": forms, "tiles": tiles, "slow_workers": body.slow_workers,
            "width": header.width, "height": header.height, **source,
        }  # fmt: skip
        new.tiles = tiles
        new.trusted_workers = body.trusted_workers
        new.slow_workers = body.slow_workers
        new.required_caps = int(Cap.NEW_POST_PROCESSORS) if needs_new else 0
        new.webhook = webhook
        return new

    def accepted_body(self, request_id: uuid.UUID, new: NewRequest, *, possible: bool) -> Accepted:
        # RequestInterrogationResponse: no kudos, no warnings
        return RequestInterrogationResponse(
            id=str(request_id), message=None if possible else NO_WORKER_MESSAGE
        )

    def ttl(self, horde: Resources, new: NewRequest) -> float:
        return horde.settings.alchemy_job_ttl

    def profile(
        self, horde: Resources, worker: dict[str, Any], *, owner_trusted: bool, amount: int
    ) -> WorkerProfile:
        fields = base_profile(worker, kind=self.name, owner_trusted=owner_trusted, amount=amount)
        config = worker.get("config") or {}
        fields.update(forms=frozenset(config.get("forms", ())), max_tiles=int(config.get("max_tiles", 80)))
        return with_caps(fields, int(horde.capabilities.caps_of(str(worker.get("bridge_agent") or ""))))

    def uptime_reward(self, horde: Resources, worker: dict[str, Any]) -> float:
        return pricing.ALCHEMY_UPTIME_REWARD

    def performance(self, speed: float) -> str:
        return f"{round(1 / speed, 1) if speed > 0 else 0} seconds per form"

    def worker_fields(self, worker: Worker) -> dict[str, Any]:
        return {"forms": list((worker.config or {}).get("forms", []))}

    def worker_config(self, body: Any) -> dict[str, Any]:
        assert isinstance(body, InterrogationPopInput)
        return {**common_config(body), "forms": sorted(set(body.forms)), "max_tiles": body.max_tiles}

    async def pop_body(
        self, horde: Resources, request: RequestRow, jobs: list[ClaimedJob], profile: WorkerProfile
    ) -> dict[str, Any]:
        payload = request.payload
        source = payload.get("source_url") or horde.storage.download_url(payload["source_key"])
        forms = []
        for job in jobs:
            form: dict[str, Any] = {"id": str(job.id), "form": job.form, "source_image": source}
            if form_payload := payload["forms"].get(job.form):
                form["payload"] = form_payload
            if job.form in IMAGE_FORMS:
                form["r2_upload"] = horde.storage.upload_url(f"{job.id}.webp")
            forms.append(form)
        return {"forms": forms, "skipped": {}}

    def upload_bounds(self, payload: dict[str, Any], form: str | None) -> tuple[int, int] | None:
        if form not in IMAGE_FORMS:
            return None
        factor = UPSCALE if form in pricing.UPSCALERS else 1
        if "width" not in payload:  # stored before sizes were kept
            return MAX_SIDE, MAX_SIDE
        return min(MAX_SIDE, int(payload["width"]) * factor), min(MAX_SIDE, int(payload["height"]) * factor)

    def merge_pop_bodies(self, bodies: list[dict[str, Any]]) -> dict[str, Any]:
        return {"forms": [form for body in bodies for form in body["forms"]], "skipped": {}}

    def empty_pop_body(self, skipped: dict[str, int]) -> dict[str, Any]:
        keys = ("worker_id", "untrusted", "bridge_version")
        return {"forms": [], "skipped": {k: v for k, v in skipped.items() if k in keys}}

    async def accept(
        self, horde: Resources, body: Any, *, request: RequestRow, job: dict[str, Any], worker: Worker
    ) -> SubmitOutcome:
        assert isinstance(body, InterrogationSubmitInput)
        if body.state == "faulted":
            return SubmitOutcome(result=None, faulted=True)
        result = body.result if isinstance(body.result, dict) else {str(job["form"]): body.result}
        form = str(job["form"])
        if (
            form in IMAGE_FORMS
            and result.get(form) == "R2"
            and not await horde.storage.exists(f"{job['id']}.webp")
        ):
            raise HordeError(  # as an image job's (ADR 0014): nothing uploaded, nothing to pay for
                RC.ImageValidationFailed,
                "The form's image was to be uploaded to its r2_upload URL, and it was not",
            )
        kudos = pricing.alchemy_form_kudos(form, tiles=int(request.payload.get("tiles", 1)))
        burn = pricing.alchemy_burn(kudos, slow_workers=bool(request.payload.get("slow_workers", True)))
        return SubmitOutcome(result=json.dumps(result), reward=kudos, burn=burn, things=1.0)

    async def status_body(
        self,
        horde: Resources,
        request: RequestRow,
        jobs: list[dict[str, Any]],
        *,
        summary: dict[str, Any],
        full: bool,
    ) -> dict[str, Any]:
        latest: dict[str, dict[str, Any]] = {}  # a re-queued form shows its best attempt
        for job in jobs:
            best = latest.get(job["form"])
            if best is None or _PREFERENCE[job["state"]] < _PREFERENCE[best["state"]]:
                latest[job["form"]] = job
        forms = [await self.generation(horde, request, job) for job in latest.values()]
        return {"state": overall_state({form["state"] for form in forms}), "forms": forms}

    async def generation(self, horde: Resources, request: RequestRow, job: dict[str, Any]) -> dict[str, Any]:
        result = json.loads(job["result"]) if job.get("result") else {}
        if job.get("form") in IMAGE_FORMS and result.get(job["form"]) == "R2":
            result[job["form"]] = horde.storage.download_url(f"{job['id']}.webp")
        form = {"form": job["form"], "state": _FORM_STATE[job["state"]]}
        return {**form, "result": result} if result else form  # the reference omits a missing result


_PREFERENCE = {"done": 0, "processing": 1, "queued": 2, "cancelled": 3, "faulted": 4}
_FORM_STATE = {
    "queued": "waiting", "processing": "processing", "done": "done", "faulted": "faulted",
    "cancelled": "cancelled",
}  # fmt: skip


def overall_state(states: set[str]) -> str:
    """An interrogation's state from its forms' (SEMANTICS.md 3.7)."""
    if states == {"faulted"}:
        return "faulted"
    if states <= {"done"}:
        return "done"
    for state in ("processing", "waiting"):
        if state in states:
            return state
    return "partial"
