"""Image generation (Stable Diffusion-style requests and workers)."""

from __future__ import annotations

import math
import uuid
import zlib
from typing import Any

from horde.contract import (
    GenerationInputStable,
    ModelStyleInputParamsStable,
    PopInputStable,
    RequestStatusStable,
    SubmitInputStable,
    limits,
)
from horde.contract.rc import RC
from horde.server.catalog import is_special_model
from horde.server.errors import HordeError
from horde.server.filters.prompt import PromptScreen
from horde.server.images.codec import ImageError, b64, decode_base64, reencode_webp
from horde.server.images.sources import load_source
from horde.server.jobs.kinds.base import STYLE_PLACEHOLDER, Kind
from horde.server.jobs.kinds.common import (
    base_profile,
    check_webhook,
    common_config,
    problem_outcome,
    random_seed,
    requested_models,
    target_workers,
    with_caps,
)
from horde.server.jobs.kinds.image_checks import allowed_caps, check_image_request, required_caps
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

SKIPPED_KEYS = (
    "worker_id", "performance", "nsfw", "blacklist", "untrusted", "models", "bridge_version", "kudos",
    "max_pixels", "step_count", "unsafe_ip", "img2img", "painting", "post-processing", "lora", "controlnet",
)  # fmt: skip


POP_FLAGS = (
    "allow_img2img", "allow_painting", "allow_post_processing", "allow_controlnet", "allow_sdxl_controlnet",
    "allow_lora", "limit_max_steps", "require_upfront_kudos",
)  # fmt: skip


WORKER_FLAGS = {
    "img2img": "allow_img2img",
    "painting": "allow_painting",
    "post-processing": "allow_post_processing",
    "lora": "allow_lora",
    "controlnet": "allow_controlnet",
    "sdxl_controlnet": "allow_sdxl_controlnet",
}  # fmt: skip  (WorkerDetails key: the pop flag it shows)


def seed_of(text: str | None) -> int | None:
    """The reference's seed: digits as a number, other text folded from its bytes to below 2**32."""
    if not text:
        return None
    if text.isascii() and text.isdigit() and len(text) <= 20:
        return int(text) % 2**32
    return zlib.crc32(text.encode())


def job_seeds(seed: str | None, variation: int | None, n: int) -> list[int]:
    base = seed_of(seed)
    if base is None:
        return [random_seed() for _ in range(n)]
    return [(base + (variation or 0) * i) % 2**32 for i in range(n)]


async def _store_sources(
    horde: Resources, body: GenerationInputStable, request_id: uuid.UUID, owner: int
) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    policy = horde.source_policy
    if body.source_image:
        data, _, _ = await load_source(horde.http, body.source_image, policy, owner=owner)
        await horde.storage.put(f"{request_id}_src.webp", data)
        stored["source_image"] = f"{request_id}_src.webp"
    if body.source_mask:
        data, _, _ = await load_source(horde.http, body.source_mask, policy, owner=owner)
        await horde.storage.put(f"{request_id}_msk.webp", data)
        stored["source_mask"] = f"{request_id}_msk.webp"
    extras = []
    for i, extra in enumerate(body.extra_source_images or []):
        data, _, _ = await load_source(horde.http, extra.image, policy, owner=owner)
        key = f"{request_id}_exra_src_{i}.webp"
        await horde.storage.put(key, data)
        extras.append({"key": key, "strength": extra.strength})
    if extras:
        stored["extra_source_images"] = extras
    return stored


def _sdxl(horde: Resources, body: GenerationInputStable) -> bool:
    return any(horde.catalog.baseline(model) == "stable_diffusion_xl" for model in body.models)


def _over_average_steps(horde: Resources, body: GenerationInputStable) -> bool:
    """Whether `limit_max_steps` workers refuse this request: its accurate steps exceed the mean of a
    requested model's min and max steps (SEMANTICS.md 3.3, skipped as `step_count`)."""
    steps = pricing.accurate_steps(body.params.steps, body.params.sampler_name)
    return any(steps > horde.catalog.average_steps(model) for model in body.models)


def _base_price(body: GenerationInputStable) -> float:
    p = body.params
    return pricing.image_base_price(
        width=p.width, height=p.height, steps=p.steps, post_processors=len(p.post_processing),
        controlnet=bool(p.control_type) and not p.return_control_map, loras=len(p.loras or []),
        tis=bool(p.tis),
    )  # fmt: skip


def _dry_run(horde: Resources, body: GenerationInputStable, price: float) -> float:
    p = body.params
    factor = pricing.baseline_factor(horde.catalog.baseline(body.models[0])) if body.models else 2.0
    burn = pricing.image_burn(
        price, source_image=bool(body.source_image), slow_workers=body.slow_workers,
        upscalers=len([pp for pp in p.post_processing if pp in pricing.UPSCALERS]),
        worker_blacklist=body.worker_blacklist,
    )  # fmt: skip
    return round(burn * p.n * factor + 1, 2)


class ImageKind(Kind):
    name = "image"
    api_type = "image"
    full_status = RequestStatusStable
    always_skipped_keys = SKIPPED_KEYS
    credits_teams = True  # only image work counts for teams (SEMANTICS.md 1.6); uptime of any kind does
    style_params = ModelStyleInputParamsStable
    style_keeps = frozenset({"width", "height"})  # a style without a size keeps the request's

    def style_prompt(self, prompt: str, template: str) -> str:
        positive, _, negative = prompt.partition("###")  # the negative prompt follows "###"
        values = {"p": positive, "np": negative}
        return STYLE_PLACEHOLDER.sub(lambda m: values[m.group(1)], template)

    def screening(self, horde: Resources, body: Any, *, user: Principal) -> PromptScreen | None:
        assert isinstance(body, GenerationInputStable)
        return PromptScreen(
            prompt=body.prompt,
            replacement=body.replacement_filter or user.education,
            nsfw_models=any(horde.catalog.is_nsfw(model) for model in body.models),
        )

    async def prepare(self, horde: Resources, body: Any, *, user: Principal) -> NewRequest:
        assert isinstance(body, GenerationInputStable)
        if user.education:  # SEMANTICS.md 5: education accounts get safe requests whatever they ask
            body = body.model_copy(update={"nsfw": False, "censor_nsfw": True, "trusted_workers": True})
        check_image_request(body, user)
        p = body.params
        price = _base_price(body)
        webhook = await check_webhook(horde, body.webhook)
        request_id = uuid.uuid4()
        sources = {} if body.dry_run else await _store_sources(horde, body, request_id, user.id)
        params = p.model_dump(mode="json", exclude={"n", "steps", "seed", "seed_variation"}, by_alias=True)
        payload = {
            "params": params, "steps": p.steps, "prompt": body.prompt, "r2": body.r2,
            "use_nsfw_censor": (not body.nsfw) and body.censor_nsfw, "shared": False,
            "source_processing": body.source_processing, "disable_batching": body.disable_batching,
            **sources,
        }  # fmt: skip
        return NewRequest(
            id=request_id, kind=self.name, payload=payload,
            jobs=[JobSpec(seed=s) for s in job_seeds(p.seed, p.seed_variation, p.n)],
            kudos=pricing.hundredths(price), prompt=body.prompt, pixels=p.width * p.height,
            nsfw=body.nsfw, trusted_workers=body.trusted_workers, slow_workers=body.slow_workers,
            extra_slow_workers=body.extra_slow_workers, worker_blacklist=body.worker_blacklist,
            worker_ids=target_workers(body), models=requested_models(body.models),
            required_caps=required_caps(body, sdxl=_sdxl(horde, body)), webhook=webhook,
            dry_run_kudos=_dry_run(horde, body, price), over_average_steps=_over_average_steps(horde, body),
            extra_source_images=len(body.extra_source_images or []),
        )  # fmt: skip

    def key_usage(self, body: Any) -> tuple[int, int, int]:
        params = body.params
        return (params.width * params.height, params.steps, 0)

    def upfront(self, horde: Resources, new: NewRequest, *, threads: int, queued: int) -> float | None:
        params = new.payload["params"]
        steps = pricing.accurate_steps(int(new.payload["steps"]), params.get("sampler_name"))
        side = pricing.free_image_side(
            threads=threads, queued=queued, baselines=[horde.catalog.baseline(m) for m in new.models]
        )
        max_steps = min(
            (horde.catalog.max_steps(m) or pricing.DEFAULT_MAX_STEPS for m in new.models),
            default=pricing.DEFAULT_MAX_STEPS,
        )
        needs = (
            not new.slow_workers
            or (params.get("sampler_name") == "lcm" and steps > pricing.LCM_MAX_STEPS)
            or steps > max_steps
            or new.pixels > side * side
            or (bool(params.get("control_type")) and steps > pricing.CONTROLNET_MAX_STEPS)
        )
        return new.dry_run_kudos if needs else None

    def downgrade(self, horde: Resources, body: Any, *, threads: int, queued: int) -> Any:
        assert isinstance(body, GenerationInputStable)
        p = body.params
        side = pricing.free_image_side(
            threads=threads, queued=queued, baselines=[horde.catalog.baseline(m) for m in body.models]
        )
        width, height = pricing.downgraded_size(p.width, p.height, side=side)
        max_steps = min(
            (horde.catalog.max_steps(m) or pricing.DEFAULT_MAX_STEPS for m in body.models),
            default=pricing.DEFAULT_MAX_STEPS,
        )
        steps = pricing.downgraded_steps(
            p.steps, sampler=p.sampler_name, max_steps=max_steps, controlnet=bool(p.control_type)
        )
        params = p.model_copy(update={"width": width, "height": height, "steps": steps})
        return body.model_copy(update={"params": params})

    def ttl(self, horde: Resources, new: NewRequest) -> float:
        s = horde.settings
        ttl = s.image_job_ttl_base + int(new.payload["steps"]) * 2 * (new.pixels / (512 * 512))
        if new.payload["params"].get("control_type"):
            ttl *= 2
        return max(ttl, s.image_job_ttl_min)

    def profile(
        self, horde: Resources, worker: dict[str, Any], *, owner_trusted: bool, amount: int
    ) -> WorkerProfile:
        fields = base_profile(worker, kind=self.name, owner_trusted=owner_trusted, amount=amount)
        config = worker.get("config") or {}
        models = frozenset(worker.get("models") or ())
        fields.update(
            models=models,
            max_pixels=int(config.get("max_pixels", 512 * 512)),
            slow=fields["speed"] < 0.5,
            limit_max_steps=bool(config.get("limit_max_steps", False)),
            serves_special=any(is_special_model(m) for m in models),
        )
        bridge = int(horde.capabilities.caps_of(str(worker.get("bridge_agent") or "")))
        return with_caps(fields, allowed_caps(bridge, config))

    def worker_models(self, horde: Resources, models: list[str], *, owner: Principal) -> list[str]:
        if not models:
            return ["stable_diffusion"]
        if not owner.special:  # special models are served by special users only (SEMANTICS.md 5)
            models = [m for m in models if not is_special_model(m)]
            if not models:
                raise HordeError(RC.BadRequest, "Only special users may serve special models")
        if owner.customizer or owner.special or not horde.catalog.image:
            return models
        known = [m for m in models if horde.catalog.is_known("image", m)]
        if not known:
            raise HordeError(RC.BadRequest, "None of the declared models is known to this horde")
        return known

    def uptime_reward(self, horde: Resources, worker: dict[str, Any]) -> float:
        config = worker.get("config") or {}
        return pricing.image_uptime_reward(
            models=len(worker.get("models") or ()), allow_lora=bool(config.get("allow_lora", False))
        )

    def performance(self, speed: float) -> str:
        return f"{round(speed, 1)} megapixelsteps per second"

    def worker_fields(self, worker: Worker) -> dict[str, Any]:
        config = worker.config or {}
        return {
            "models": list(worker.models or []),
            "max_pixels": int(config.get("max_pixels", limits.DEFAULT_MAX_PIXELS)),
            "megapixelsteps_generated": int(worker.things),
            **{key: bool(config.get(flag, False)) for key, flag in WORKER_FLAGS.items()},
        }

    def worker_config(self, body: Any) -> dict[str, Any]:
        assert isinstance(body, PopInputStable)
        flags = {flag: getattr(body, flag) for flag in POP_FLAGS}
        return {**common_config(body), "max_pixels": body.max_pixels, **flags}

    def batch_size(self, request: RequestRow, profile: WorkerProfile) -> int:
        if request.payload.get("disable_batching"):
            return 1
        w, h = int(request.payload["params"]["width"]), int(request.payload["params"]["height"])
        pp = len(request.payload["params"].get("post_processing") or [])
        budget = round(profile.max_pixels / 3.5 * profile.amount / (w * h * (1 + 0.4 * pp)))
        return max(1, min(profile.amount, budget))

    async def pop_body(
        self, horde: Resources, request: RequestRow, jobs: list[ClaimedJob], profile: WorkerProfile
    ) -> dict[str, Any]:
        first, payload = jobs[0], request.payload
        body: dict[str, Any] = {
            "payload": {
                **payload["params"], "prompt": payload["prompt"], "ddim_steps": payload["steps"],
                "seed": str(first.seed), "n_iter": len(jobs),
            },
            "id": str(first.id), "ids": [str(j.id) for j in jobs], "model": first.model,
            "ttl": math.ceil(request.ttl * horde.settings.job_ttl_scale * (3 if profile.extra_slow else 1)),
            "source_processing": payload.get("source_processing", "img2img"),
            "r2_upload": horde.storage.upload_url(f"{first.id}.webp"),
            "r2_uploads": [horde.storage.upload_url(f"{j.id}.webp") for j in jobs],
            "messages": [], "skipped": {},
        }  # fmt: skip
        if payload.get("use_nsfw_censor"):
            body["payload"]["use_nsfw_censor"] = True
        by_url = bool(profile.caps & Cap.R2_SOURCE)
        for field in ("source_image", "source_mask"):
            if key := payload.get(field):
                body[field] = await self._source(horde, key, by_url)
        if extras := payload.get("extra_source_images"):
            body["extra_source_images"] = [
                {"image": await self._source(horde, e["key"], by_url), "strength": e["strength"]}
                for e in extras
            ]
        return body

    @staticmethod
    async def _source(horde: Resources, key: str, by_url: bool) -> str:
        if by_url:
            return horde.storage.download_url(key)
        data = await horde.storage.get(key)
        return b64(data) if data else ""

    async def accept(
        self, horde: Resources, body: Any, *, request: RequestRow, job: dict[str, Any], worker: Worker
    ) -> SubmitOutcome:
        assert isinstance(body, SubmitInputStable)
        if body.state == "faulted":
            return SubmitOutcome(result=None, faulted=True)
        key = f"{job['id']}.webp"
        meta = [m.model_dump(mode="json") for m in body.gen_metadata or []]
        reward = request.kudos / 100 * pricing.baseline_factor(horde.catalog.baseline(job.get("model") or ""))
        if body.state == "csam" or any(m["value"] == "csam" for m in meta):
            await horde.storage.delete(key)  # an upload by URL is dropped; an inline one never stored
            return problem_outcome(reward, body.seed, meta)
        if body.generation and body.generation != "R2":
            try:
                data, _, _ = await reencode_webp(decode_base64(body.generation), owner=worker.user_id)
            except ImageError as exc:
                raise HordeError(RC.ImageValidationFailed, "The generation is not a readable image") from exc
            await horde.storage.put(key, data)
        elif not await horde.storage.exists(key):  # "R2": the result must be at its upload URL by now
            raise HordeError(
                RC.ImageValidationFailed,
                "The generation was to be uploaded to its r2_upload URL, and it was not",
            )
        censored = body.censored or body.state == "censored" or any(m["type"] == "censorship" for m in meta)
        params = request.payload["params"]
        burn = pricing.image_burn(
            0.0 if censored else reward, source_image=bool(request.payload.get("source_image")),
            upscalers=len([pp for pp in params.get("post_processing") or [] if pp in pricing.UPSCALERS]),
            slow_workers=request.slow_workers, worker_blacklist=request.worker_blacklist,
        )  # fmt: skip
        state = "censored" if censored else "ok"
        things = params["width"] * params["height"] * request.payload["steps"] / 1e6
        meta_out = {"seed": body.seed, "censored": censored, "gen_metadata": meta, "state": state}
        return SubmitOutcome(result=key, meta=meta_out, reward=reward, burn=burn, things=things)

    async def generation(self, horde: Resources, request: RequestRow, job: dict[str, Any]) -> dict[str, Any]:
        meta = job.get("result_meta") or {}
        key = job.get("result") or ""
        if request.payload.get("r2", True):
            img = horde.storage.download_url(key) if key else ""
        else:
            data = await horde.storage.get(key) if key else None
            img = b64(data) if data else ""
        return {
            "img": img, "seed": str(meta.get("seed", job.get("seed") or 0)), "id": str(job["id"]),
            "censored": bool(meta.get("censored")), "gen_metadata": meta.get("gen_metadata", []),
            "worker_id": str(job["worker_id"]), "worker_name": job.get("worker_name") or "",
            "model": job.get("model") or "", "state": meta.get("state", "ok"),
        }  # fmt: skip

    async def status_body(
        self,
        horde: Resources,
        request: RequestRow,
        jobs: list[dict[str, Any]],
        *,
        summary: dict[str, Any],
        full: bool,
    ) -> dict[str, Any]:
        body = await super().status_body(horde, request, jobs, summary=summary, full=full)
        if full:
            body["shared"] = False  # the reference stores it but forces it off (SEMANTICS.md 4.1.6)
        return body

    def upload_bounds(self, payload: dict[str, Any], form: str | None) -> tuple[int, int] | None:
        params = payload["params"]
        upscaled = any(pp in pricing.UPSCALERS for pp in params.get("post_processing") or [])
        factor = 4 if upscaled else 1  # the largest upscaler is x4
        return int(params["width"]) * factor, int(params["height"]) * factor

    def things(self, payload: dict[str, Any]) -> float:
        params = payload["params"]
        return float(params["width"] * params["height"] * payload["steps"] / 1e6)
