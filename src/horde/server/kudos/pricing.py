"""Prices and rewards (SEMANTICS.md 4.1-4.3), in kudos as floats; callers store hundredths.

The reference prices images with a small neural network whose weights we do not have; we use our own
formula, fitted to its anchor points (ADR 0015). Everything here is pure and unit-tested.
"""

from __future__ import annotations

import math

UPSCALERS = frozenset(
    {
        "RealESRGAN_x4plus", "RealESRGAN_x2plus", "RealESRGAN_x4plus_anime_6B", "NMKD_Siax",
        "4x_AnimeSharp", "4xNomos8kSC", "4xLSDIRplus", "4xNomosWebPhoto_RealPLKSR",
        "4xNomos2_realplksr_dysample", "4xNomos2_hq_dat2", "2xModernSpanimationV1",
    }
)  # fmt: skip
BASELINE_FACTOR = {
    "stable_diffusion_xl": 2.0,
    "stable_cascade": 4.0,
    "flux_1": 8.0,
    "z_image": 8.0,
    "qwen_image": 12.0,
}


def hundredths(kudos: float) -> int:
    return round(kudos * 100)


def kudos_of(value: int) -> float:
    return value / 100


# Our image price (ADR 0015): seconds grow with steps and, less than linearly, with area; a ControlNet
# and each post-processor add their work. Fitted to the anchors of SEMANTICS.md 4.1 (see
# tests/server/test_price_anchors.py): 512x512 at 50 steps costs 11 kudos, 1024x1024 29.03.
BASIS_PRICE = 11.0
BASIS_STEPS = 50
BASIS_AREA = 512 * 512
AREA_FIXED = 0.4536  # of the basis' time, the part that does not grow with the area
CONTROLNET_FACTOR = 1.8
POST_PROCESSOR_PRICE = 8.88  # kudos per post-processor at the basis area


def image_base_price(
    *, width: int, height: int, steps: int, post_processors: int, controlnet: bool, loras: int, tis: bool
) -> float:
    """The per-image price on the SD 1.5 basis (4.1.1): our formula, within 10 % of every anchor."""
    area = AREA_FIXED + (1 - AREA_FIXED) * (width * height) / BASIS_AREA
    price = BASIS_PRICE * steps / BASIS_STEPS * area
    if controlnet:
        price *= CONTROLNET_FACTOR
    price += POST_PROCESSOR_PRICE * post_processors * area
    return round(price, 2) + 3 * loras + (1 if tis else 0)


def baseline_factor(baseline: str | None) -> float:
    return BASELINE_FACTOR.get(baseline or "", 1.0)


def image_burn(
    gen_kudos: float, *, source_image: bool, upscalers: int, slow_workers: bool, worker_blacklist: bool
) -> float:
    """What the requester pays for one image (4.1.3)."""
    burn = gen_kudos * (1.3 if source_image else 1.0) * float(1.05**upscalers) + 1
    if not slow_workers:
        burn *= 1.2
    if worker_blacklist:
        burn *= 1.1
    return float(burn)


def context_multiplier(context: int) -> float:
    return min(max(1.2 + float(2.2 ** math.log2(max(context, 1) / 1024)), 0.1), 30.0)


def text_estimate(*, max_length: int, max_context_length: int, params_billions: float | None) -> float:
    """The per-job dry-run estimate of a text request (4.2)."""
    c = context_multiplier(max_context_length)
    if params_billions is None:
        return max_length * 13 * c / 100
    bonus = float((max(params_billions, 13) / 13) ** 0.2)
    return max_length * bonus * params_billions * c / 100


def text_reward(
    *,
    text: str,
    prompt: str,
    max_length: int,
    params_billions: float | None,
    validated: bool,
    owner_trusted: bool,
) -> float:
    """The worker's reward for one text completion (4.2)."""
    tokens = min(max(math.ceil(len(text) / 4), 20), max_length)
    c = context_multiplier(min(math.ceil(len(prompt) / 4), max_length))
    if params_billions is None:
        return tokens * c * 0.027 if owner_trusted else c
    bonus = float((max(params_billions, 13) / 13) ** 0.2)
    reward = tokens * bonus * params_billions / 125 * c
    return reward if validated else reward * 0.3


def alchemy_form_kudos(form: str, *, tiles: int) -> float:
    """What a worker earns for one alchemy form (4.3)."""
    if form == "interrogation":
        return 3.0
    if form in UPSCALERS or form in {
        "GFPGAN",
        "GFPGANv1.3",
        "CodeFormers",
        "RestoreFormer",
        "strip_background",
    }:
        return 3.0 * max(tiles, 1)
    return 1.0


def alchemy_burn(form_kudos: float, *, slow_workers: bool) -> float:
    return form_kudos + 1 + (1 if slow_workers else 0)


# Upfront kudos (SEMANTICS.md 4.4): what a request may ask for without kudos to cover it.
SLOW_SAMPLERS = frozenset({"k_heun", "k_dpm_2", "k_dpm_2_a", "k_dpmpp_2s_a", "k_dpmpp_sde"})
DEFAULT_MAX_STEPS = 40
LCM_MAX_STEPS = 10
CONTROLNET_MAX_STEPS = 20
MIN_FREE_SIDE = {"stable diffusion 2": 768, "stable_diffusion_xl": 1024, "stable_cascade": 1024,
                 "flux_1": 1024, "z_image": 1024, "qwen_image": 1024}  # fmt: skip


def accurate_steps(steps: int, sampler: str | None) -> int:
    """Steps as the work they are: second-order samplers count twice, the adaptive one counts 40."""
    if sampler == "k_dpm_adaptive":
        return 40
    return steps * 2 if sampler in SLOW_SAMPLERS else steps


def free_image_side(*, threads: int, queued: int, baselines: list[str | None]) -> int:
    """The largest side (of a square) an image request may have without upfront kudos: smaller as the
    queue grows past what the online threads absorb, never below what the requested models need."""
    side = min(max(1024 + 10 * threads - round(0.9 * queued), 576), 1024)
    return max([side, *(MIN_FREE_SIDE.get(b or "", 0) for b in baselines)])


def free_text_length(*, threads: int, queued: int) -> int:
    """The largest max_length a text request may have without upfront kudos."""
    return min(max(512 + 5 * threads - round(0.9 * queued), 256), 512)


def downgraded_size(width: int, height: int, *, side: int) -> tuple[int, int]:
    """`allow_downgrade`: the size scaled, keeping its shape, to fit the free area `side`**2, each side
    snapped down to a multiple of 64, the area kept at least 512x512."""
    if width * height <= side * side:
        return width, height
    scale = math.sqrt(side * side / (width * height))
    w, h = max(64, int(width * scale) // 64 * 64), max(64, int(height * scale) // 64 * 64)
    while w * h < 512 * 512:  # a very elongated shape: grow the short side back
        if w <= h:
            w += 64
        else:
            h += 64
    return w, h


def downgraded_steps(steps: int, *, sampler: str | None, max_steps: int, controlnet: bool) -> int:
    """`allow_downgrade`: steps cut to the limit that makes them free (the models' limit, 20 with a
    ControlNet, 10 for LCM), counted as the work they are (`accurate_steps`)."""
    limit = max_steps
    if controlnet:
        limit = min(limit, CONTROLNET_MAX_STEPS)
    if sampler == "lcm":
        limit = min(limit, LCM_MAX_STEPS)
    if accurate_steps(steps, sampler) <= limit:
        return steps
    return max(1, limit // 2 if sampler in SLOW_SAMPLERS else limit)


def text_upfront(*, max_length: int, n: int, params_billions: float | None) -> float:
    """What a text request reserves when it needs upfront kudos (4.4)."""
    if params_billions is None:
        return 20.0 * n
    return round(max_length * params_billions / 21, 2) * n


# Uptime rewards (SEMANTICS.md 4.5): paid for each UPTIME_SECONDS a worker stays online; a worker back
# from more than UPTIME_STALE seconds offline starts a fresh period.
UPTIME_SECONDS = 600
UPTIME_STALE = 300


def image_uptime_reward(*, models: int, allow_lora: bool) -> float:
    """An image worker's reward per uptime period: 50 + 2 per model (+30 when it serves LoRAs)."""
    return float(50 + 2 * models + (30 if allow_lora else 0))


def text_uptime_reward(*, max_context_length: int, params_billions: float | None, validated: bool) -> float:
    """A text worker's reward per uptime period, from its context and its (first) model's size."""
    base = 25 + 15 * min(max_context_length, 262144) / 1024
    if not validated:
        base *= 0.3
    if params_billions is None:
        return round(base * 0.5, 2)
    return round(base * max(params_billions / 7, 0.25), 2)


ALCHEMY_UPTIME_REWARD = 40.0
