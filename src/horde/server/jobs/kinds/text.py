"""Text generation (KoboldAI-style requests and workers)."""

from __future__ import annotations

import math
from typing import Any

from horde.contract import (
    GenerationInputKobold,
    ModelStyleInputParamsKobold,
    PopInputKobold,
    RequestStatusKobold,
    SubmitInputKobold,
    limits,
)
from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.filters.prompt import PromptScreen
from horde.server.jobs.kinds.base import Kind
from horde.server.jobs.kinds.common import (
    base_profile,
    check_batching,
    check_webhook,
    common_config,
    problem_outcome,
    refuse_unbuilt,
    requested_models,
    target_workers,
    with_caps,
)
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

MIN_SAMPLER_ORDER = 7
MAX_STOP_SEQUENCES = 128
MAX_STOP_CHARS = 2000
MAX_SOFTPROMPT_CHARS = 255


def _check_params(body: GenerationInputKobold) -> None:
    params = body.params
    if params.max_length > params.max_context_length:
        raise HordeError(RC.TokenOverflow, "max_length cannot be greater than max_context_length")
    order = params.sampler_order
    if order is not None and len(set(order)) < MIN_SAMPLER_ORDER:
        raise HordeError(RC.MissingFullSamplerOrder, "sampler_order needs at least 7 distinct samplers")
    stops = params.stop_sequence or []
    if len(set(stops)) > MAX_STOP_SEQUENCES:
        raise HordeError(RC.TooManyStopSequences, "At most 128 stop sequences are allowed")
    if sum(len(s) for s in stops) > MAX_STOP_CHARS:
        raise HordeError(RC.ExcessiveStopSequence, "Stop sequences may hold at most 2000 characters")


def _check_request(body: GenerationInputKobold, user: Principal) -> None:
    refuse_unbuilt(body, user)
    if not body.prompt:
        raise HordeError(RC.MissingPrompt, "A prompt is required")
    if len(body.prompt.encode()) > limits.MAX_TEXT_PROMPT_BYTES:
        raise HordeError(RC.InvalidPromptSize, f"Prompts are limited to {limits.MAX_TEXT_PROMPT_BYTES} bytes")
    if body.extra_source_images:
        raise HordeError(RC.BadRequest, "extra_source_images are only for image generation")
    if body.softprompt and len(body.softprompt) > MAX_SOFTPROMPT_CHARS:
        raise HordeError(RC.BadRequest, f"A softprompt name is limited to {MAX_SOFTPROMPT_CHARS} characters")
    check_batching(body, user)
    _check_params(body)


class TextKind(Kind):
    name = "text"
    api_type = "text"
    full_status = RequestStatusKobold
    style_params = ModelStyleInputParamsKobold

    def screening(self, horde: Resources, body: Any, *, user: Principal) -> PromptScreen | None:
        if not horde.settings.filter_text_prompts:
            return None  # the reference does not filter text prompts (SEMANTICS.md 8)
        return PromptScreen(prompt=body.prompt, replacement=False)

    async def prepare(self, horde: Resources, body: Any, *, user: Principal) -> NewRequest:
        assert isinstance(body, GenerationInputKobold)
        _check_request(body, user)
        params = body.params
        billions = max((p for m in body.models if (p := horde.catalog.text_params_billions(m))), default=None)
        estimate = pricing.text_estimate(
            max_length=params.max_length,
            max_context_length=params.max_context_length,
            params_billions=billions,
        )
        payload = {"params": params.model_dump(mode="json", exclude={"n"}), "prompt": body.prompt}
        if body.softprompt:
            payload["softprompt"] = body.softprompt
        return NewRequest(
            kind=self.name,
            payload=payload,
            jobs=[JobSpec() for _ in range(params.n)],
            kudos=0,  # the reference never prices a real text request up front (4.2)
            prompt=body.prompt,
            max_length=params.max_length,
            max_context_length=params.max_context_length,
            trusted_workers=body.trusted_workers,
            slow_workers=body.slow_workers,
            extra_slow_workers=body.extra_slow_workers,
            worker_blacklist=body.worker_blacklist,
            worker_ids=target_workers(body),
            models=requested_models(body.models),
            required_caps=int(Cap.VALIDATED_BACKEND) if body.validated_backends else 0,
            webhook=await check_webhook(horde, body.webhook),
            dry_run_kudos=round((estimate + 1) * params.n + 1, 2),
            softprompt=(body.softprompt or "").lower(),  # matched lowercased (jobs/matching SOFTPROMPT)
        )

    def key_usage(self, body: Any) -> tuple[int, int, int]:
        return (0, 0, body.params.max_length)

    def upfront(self, horde: Resources, new: NewRequest, *, threads: int, queued: int) -> float | None:
        if new.slow_workers and new.max_length <= pricing.free_text_length(threads=threads, queued=queued):
            return None
        billions = max((p for m in new.models if (p := horde.catalog.text_params_billions(m))), default=None)
        return pricing.text_upfront(max_length=new.max_length, n=len(new.jobs), params_billions=billions)

    def downgrade(self, horde: Resources, body: Any, *, threads: int, queued: int) -> Any:
        assert isinstance(body, GenerationInputKobold)
        free = pricing.free_text_length(threads=threads, queued=queued)
        if body.params.max_length <= free:
            return body
        return body.model_copy(update={"params": body.params.model_copy(update={"max_length": free})})

    def ttl(self, horde: Resources, new: NewRequest) -> float:
        return horde.settings.text_job_ttl

    def profile(
        self, horde: Resources, worker: dict[str, Any], *, owner_trusted: bool, amount: int
    ) -> WorkerProfile:
        fields = base_profile(worker, kind=self.name, owner_trusted=owner_trusted, amount=amount)
        config = worker.get("config") or {}
        fields.update(
            models=frozenset(worker.get("models") or ()),
            max_length=int(config.get("max_length", 512)),
            max_context_length=int(config.get("max_context_length", 2048)),
            slow=fields["speed"] < 2.0,
            softprompts=tuple(sorted({str(sp).lower() for sp in config.get("softprompts") or ()})),
        )
        agent = str(worker.get("bridge_agent") or "")
        caps = horde.capabilities.caps_of(agent)
        if horde.capabilities.is_validated_text_backend(agent):
            caps |= Cap.VALIDATED_BACKEND
        return with_caps(fields, int(caps))

    def uptime_reward(self, horde: Resources, worker: dict[str, Any]) -> float:
        config = worker.get("config") or {}
        models = list(worker.get("models") or ())
        return pricing.text_uptime_reward(
            max_context_length=int(config.get("max_context_length", 2048)),
            params_billions=horde.catalog.text_params_billions(models[0]) if models else None,
            validated=horde.capabilities.is_validated_text_backend(str(worker.get("bridge_agent") or "")),
        )

    def performance(self, speed: float) -> str:
        return f"{round(speed, 1)} tokens per second"

    def worker_fields(self, worker: Worker) -> dict[str, Any]:
        config = worker.config or {}
        return {
            "models": list(worker.models or []),
            "max_length": int(config.get("max_length", limits.DEFAULT_WORKER_MAX_LENGTH)),
            "max_context_length": int(
                config.get("max_context_length", limits.DEFAULT_WORKER_MAX_CONTEXT_LENGTH)
            ),
            "tokens_generated": int(worker.things),
        }

    def worker_config(self, body: Any) -> dict[str, Any]:
        assert isinstance(body, PopInputKobold)
        return {
            **common_config(body),
            "max_length": body.max_length,
            "max_context_length": body.max_context_length,
            "softprompts": list(body.softprompts)[:100],
        }

    async def pop_body(
        self, horde: Resources, request: RequestRow, jobs: list[ClaimedJob], profile: WorkerProfile
    ) -> dict[str, Any]:
        first = jobs[0]
        payload = {**request.payload["params"], "prompt": request.payload["prompt"], "n": 1}
        body: dict[str, Any] = {
            "payload": payload,
            "id": str(first.id),
            "ids": [str(job.id) for job in jobs],
            "model": first.model,
            "ttl": math.ceil(request.ttl * horde.settings.job_ttl_scale * (3 if profile.extra_slow else 1)),
            "messages": [],
            "skipped": {},
        }
        if softprompt := request.payload.get("softprompt"):
            body["softprompt"] = softprompt
        return body

    async def accept(
        self, horde: Resources, body: Any, *, request: RequestRow, job: dict[str, Any], worker: Worker
    ) -> SubmitOutcome:
        assert isinstance(body, SubmitInputKobold)
        if body.state == "faulted":
            return SubmitOutcome(result=None, faulted=True)
        text = body.generation or ""
        max_length = int(request.payload["params"].get("max_length", 80))
        model = job.get("model") or ""
        reward = pricing.text_reward(
            text=text,
            prompt=str(request.payload["prompt"]),
            max_length=max_length,
            params_billions=horde.catalog.text_params_billions(model) if model else None,
            validated=horde.capabilities.is_validated_text_backend(worker.bridge_agent),
            owner_trusted=False,
        )
        meta = [m.model_dump(mode="json") for m in body.gen_metadata or []]
        if body.state == "csam" or any(m.get("value") == "csam" for m in meta):
            return problem_outcome(reward, body.seed, meta)
        state = "censored" if body.state == "censored" else "ok"
        tokens = min(max(math.ceil(len(text) / 4), 1), max_length)
        return SubmitOutcome(
            result=text,
            meta={"state": state, "gen_metadata": meta, "seed": body.seed},
            reward=reward,
            burn=reward + 1,
            things=tokens,
        )

    async def generation(self, horde: Resources, request: RequestRow, job: dict[str, Any]) -> dict[str, Any]:
        meta = job.get("result_meta") or {}
        return {
            "text": job.get("result") or "",
            "seed": int(meta.get("seed") or 0),
            "state": meta.get("state", "ok"),
            "gen_metadata": meta.get("gen_metadata", []),
            "worker_id": str(job["worker_id"]),
            "worker_name": job.get("worker_name") or "",
            "model": job.get("model") or "",
        }

    def things(self, payload: dict[str, Any]) -> float:
        return float(payload["params"].get("max_length", 80))
