"""Prices and rewards against values worked out by hand from SEMANTICS.md 4.1-4.3 (not from the code).

Each expectation shows the arithmetic it came from, so a changed constant or a swapped factor in
`pricing.py` fails here: the formulas are never called to produce an expected value. The image base
price is checked against the SEMANTICS 4.1 golden values in test_price_anchors.py.
"""

from __future__ import annotations

import pytest

from horde.server.kudos import pricing


@pytest.mark.parametrize(
    ("baseline", "factor"),
    [
        ("stable_diffusion_1", 1.0),
        ("stable_diffusion_2", 1.0),
        ("stable_diffusion_xl", 2.0),
        ("stable_cascade", 4.0),
        ("flux_1", 8.0),
        ("z_image", 8.0),
        ("qwen_image", 12.0),
        (None, 1.0),
    ],
)
def test_baseline_factor(baseline: str | None, factor: float) -> None:
    assert pricing.baseline_factor(baseline) == factor


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # plain: 10 + 1 = 11
        ({}, 11.0),
        # source image and two upscalers: 10 * 1.3 * 1.05**2 + 1 = 13.0 * 1.1025 + 1 = 15.3325
        ({"source_image": True, "upscalers": 2}, 15.3325),
        # the tax is added before the slow-worker and blacklist factors: (10 + 1) * 1.2 = 13.2
        ({"slow_workers": False}, 13.2),
        # (10 + 1) * 1.1 = 12.1
        ({"worker_blacklist": True}, 12.1),
        # 15.3325 * 1.2 * 1.1 = 20.2389
        ({"source_image": True, "upscalers": 2, "slow_workers": False, "worker_blacklist": True}, 20.2389),
    ],
)
def test_image_burn(flags: dict[str, bool | int], expected: float) -> None:
    values: dict[str, bool | int] = {"source_image": False, "upscalers": 0, "slow_workers": True}
    values.update({"worker_blacklist": False, **flags})
    assert pricing.image_burn(10.0, **values) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (1024, 2.2),  # 1.2 + 2.2**0
        (2048, 3.4),  # 1.2 + 2.2**1
        (4096, 6.04),  # 1.2 + 2.2**2
        (512, 1.2 + 1 / 2.2),  # 1.2 + 2.2**-1 = 1.654545...
        (0, 1.2 + 2.2**-10),  # counted as 1 token: log2(1/1024) = -10
        (65536, 30.0),  # 1.2 + 2.2**6 = 114.6, capped at 30
    ],
)
def test_context_multiplier(context: int, expected: float) -> None:
    assert pricing.context_multiplier(context) == pytest.approx(expected)


def _estimate(max_length: int, context: int, billions: float | None) -> float:
    return pricing.text_estimate(max_length=max_length, max_context_length=context, params_billions=billions)


def test_text_estimate() -> None:
    assert _estimate(80, 1024, None) == pytest.approx(22.88)  # no model: 80 * 13 * 2.2 / 100
    assert _estimate(80, 1024, 7) == pytest.approx(12.32)  # 7B, no bonus below 13B: 80 * 7 * 2.2 / 100
    # 20B: bonus (20/13)**0.2 = 1.090047; 80 * 1.090047 * 20 * 2.2 / 100 = 38.36719
    assert _estimate(80, 1024, 20) == pytest.approx(38.36719, abs=1e-4)


def _reward(text: str, prompt: str, max_length: int, billions: float | None, **flags: bool) -> float:
    values = {"validated": True, "owner_trusted": False, **flags}
    return pricing.text_reward(
        text=text, prompt=prompt, max_length=max_length, params_billions=billions, **values
    )


def test_text_reward() -> None:
    prompt = "p" * 4096  # 1024 tokens by the quick count: context multiplier 2.2
    # 400 characters = 100 tokens; 7B: 100 * 1 * 7 / 125 * 2.2 = 12.32
    assert _reward("x" * 400, prompt, 1024, 7) == pytest.approx(12.32)
    # an unvalidated backend earns 30 %: 12.32 * 0.3 = 3.696
    assert _reward("x" * 400, prompt, 1024, 7, validated=False) == pytest.approx(3.696)
    # 70B on a 2048-token prompt (c = 3.4): 100 * (70/13)**0.2 * 70 / 125 * 3.4 = 266.62317
    assert _reward("x" * 400, "p" * 8192, 2048, 70) == pytest.approx(266.62317, abs=1e-4)
    # short answers count 20 tokens: 20 * 7 / 125 * 2.2 = 2.464
    assert _reward("hi", prompt, 1024, 7) == pytest.approx(2.464)
    # long answers are capped at max_length, and so is the prompt's count (a quirk):
    # 50 tokens, c = 1.2 + 2.2**log2(50/1024); 50 * 7 / 125 * c
    capped = 1.2 + 2.2 ** (-4.356143810225275)  # log2(50/1024)
    assert _reward("x" * 4000, prompt, 50, 7) == pytest.approx(50 * 7 / 125 * capped)
    # an unknown model: c alone for an untrusted owner, 100 * 2.2 * 0.027 = 5.94 for a trusted one
    assert _reward("x" * 400, prompt, 1024, None) == pytest.approx(2.2)
    assert _reward("x" * 400, prompt, 1024, None, owner_trusted=True) == pytest.approx(5.94)


@pytest.mark.parametrize(
    ("form", "tiles", "expected"),
    [
        ("caption", 1, 1.0),
        ("nsfw", 4, 1.0),
        ("interrogation", 4, 3.0),
        ("GFPGAN", 4, 12.0),  # 3 per tile
        ("RealESRGAN_x4plus", 2, 6.0),
        ("strip_background", 0, 3.0),  # at least one tile
    ],
)
def test_alchemy_form_kudos(form: str, tiles: int, expected: float) -> None:
    assert pricing.alchemy_form_kudos(form, tiles=tiles) == expected


def test_alchemy_burn() -> None:
    assert pricing.alchemy_burn(3.0, slow_workers=True) == 5.0  # 3 + 1 + 1 more for slow workers
    assert pricing.alchemy_burn(3.0, slow_workers=False) == 4.0


def test_hundredths_round_trip() -> None:
    assert pricing.hundredths(10.83) == 1083
    assert pricing.hundredths(1.2008) == 120
    assert pricing.kudos_of(1083) == 10.83


def test_text_reward_counts_a_short_prompt() -> None:
    # a 2048-character prompt is 512 tokens (2048 / 4), under max_length: c = 1.2 + 2.2**-1 = 1.654545;
    # 100 tokens, 7B: 100 * 7 / 125 * 1.654545 = 9.265454 (a prompt counted as 2048 * 4 would give c = 2.2)
    assert _reward("x" * 400, "p" * 2048, 1024, 7) == pytest.approx(9.265454, abs=1e-5)


@pytest.mark.parametrize(
    ("size", "cn", "pp", "loras", "tis", "expected"),
    [
        # 512x512 is the basis area (factor 1): 11 * 1.8 = 19.8 with a ControlNet
        (512, True, 0, 0, False, 19.8),
        # 1024x1024: area factor 0.4536 + 0.5464 * 4 = 2.6392; 11 * 2.6392 = 29.0312, * 1.8 = 52.25616;
        # one post-processor: + 8.88 * 2.6392 = 23.436096 -> 75.692256, rounded to 75.69
        (1024, True, 1, 0, False, 75.69),
        # the same without ControlNet: 29.0312 + 23.436096 = 52.467296 -> 52.47; 2 LoRAs and a TI: + 6 + 1
        (1024, False, 1, 2, True, 59.47),
    ],
)
def test_image_base_price_factors(
    size: int, cn: bool, pp: int, loras: int, tis: bool, expected: float
) -> None:
    price = pricing.image_base_price(
        width=size, height=size, steps=50, post_processors=pp, controlnet=cn, loras=loras, tis=tis
    )
    assert price == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("form", ["GFPGAN", "GFPGANv1.3", "CodeFormers", "RestoreFormer", "4x_AnimeSharp"])
def test_alchemy_post_processors_pay_per_tile(form: str) -> None:
    assert pricing.alchemy_form_kudos(form, tiles=2) == 6.0  # 3 per tile
    assert pricing.alchemy_form_kudos(form.lower() + "x", tiles=2) == 1.0  # not a post-processor


@pytest.mark.parametrize(
    ("steps", "sampler", "expected"),
    [
        (20, "k_euler", 20),
        (20, None, 20),
        (20, "k_heun", 40),
        (7, "k_dpmpp_sde", 14),
        (3, "k_dpm_adaptive", 40),
    ],
)
def test_accurate_steps(steps: int, sampler: str | None, expected: int) -> None:
    assert pricing.accurate_steps(steps, sampler) == expected


@pytest.mark.parametrize(
    ("threads", "queued", "baselines", "expected"),
    [
        (0, 0, [], 1024),
        (10, 0, [], 1024),  # 1124 capped at 1024
        (2, 100, [], 954),  # 1024 + 20 - 90
        (0, 5, [], 1020),  # 0.9 * 5 = 4.5 rounds to 4 (to even)
        (0, 1000, [], 576),  # 124, raised to the floor 576
        (0, 1000, [None, "stable_diffusion_1"], 576),
        (0, 1000, ["stable diffusion 2"], 768),
        (0, 1000, [None, "stable_diffusion_xl"], 1024),
        (0, 300, ["stable diffusion 2"], 768),  # 1024 - 270 = 754, below SD2's 768
    ],
)
def test_free_image_side(threads: int, queued: int, baselines: list[str | None], expected: int) -> None:
    assert pricing.free_image_side(threads=threads, queued=queued, baselines=baselines) == expected


@pytest.mark.parametrize(
    ("threads", "queued", "expected"),
    [(0, 0, 512), (100, 0, 512), (4, 100, 442), (0, 5, 508), (0, 1000, 256)],  # 512 + 20 - 90 = 442
)
def test_free_text_length(threads: int, queued: int, expected: int) -> None:
    assert pricing.free_text_length(threads=threads, queued=queued) == expected


def test_text_upfront() -> None:
    assert pricing.text_upfront(max_length=512, n=3, params_billions=None) == 60.0  # 20 per job
    # 512 * 13 / 21 = 316.952..., rounded to 316.95, for 2 jobs 633.9
    assert pricing.text_upfront(max_length=512, n=2, params_billions=13) == pytest.approx(633.9)
    assert pricing.text_upfront(max_length=100, n=1, params_billions=7) == pytest.approx(33.33)  # 33.333


@pytest.mark.parametrize(
    ("models", "lora", "expected"), [(3, False, 56.0), (0, True, 80.0), (10, True, 100.0)]
)  # 50 + 2 per model + 30 with LoRAs
def test_image_uptime_reward(models: int, lora: bool, expected: float) -> None:
    assert pricing.image_uptime_reward(models=models, allow_lora=lora) == expected


@pytest.mark.parametrize(
    ("context", "billions", "validated", "expected"),
    [
        (4096, 7, True, 85.0),  # 25 + 15 * 4096 / 1024 = 85, x 7/7
        (4096, 14, True, 170.0),  # x 14/7
        (4096, 1, True, 21.25),  # x max(1/7, 0.25)
        (4096, None, True, 42.5),  # no model size: x 0.5
        (4096, 7, False, 25.5),  # unvalidated: x 0.3
        (2048, 3.5, True, 27.5),  # 55 x 0.5
        (1_000_000, 7, True, 3865.0),  # the context counts up to 262144: 25 + 15 * 256
        (1000, 7, True, 39.65),  # 25 + 14.6484375 = 39.6484375, rounded
        (1000, None, False, 5.95),  # 39.6484375 x 0.3 x 0.5 = 5.947265625, rounded
    ],
)
def test_text_uptime_reward(context: int, billions: float | None, validated: bool, expected: float) -> None:
    reward = pricing.text_uptime_reward(
        max_context_length=context, params_billions=billions, validated=validated
    )
    assert reward == expected


@pytest.mark.parametrize(
    ("size", "side", "expected"),
    [
        ((512, 512), 1024, (512, 512)),
        ((1024, 1024), 1024, (1024, 1024)),  # exactly the free area: unchanged
        ((2048, 2048), 1024, (1024, 1024)),  # scale 0.5
        # scale sqrt(1024**2 / (2048 * 1024)) = 0.7071: 1448 -> 1408, 724 -> 704 (multiples of 64)
        ((2048, 1024), 1024, (1408, 704)),
        # scale 0.661: 660 -> 640, 396 -> 384; 640 x 384 < 512 x 512, so the short side grows to 448
        ((1000, 600), 512, (640, 448)),
        ((600, 1000), 512, (448, 640)),
        ((100_000, 64), 512, (20224, 64)),  # a side never below 64
        ((64, 100_000), 512, (64, 20224)),
        ((1000, 1000), 1000, (1000, 1000)),  # exactly the free area, not a multiple of 64: unchanged
        ((2048, 2048), 512, (512, 512)),  # exactly 512 x 512 after the cut: nothing grows back
    ],
)
def test_downgraded_size(size: tuple[int, int], side: int, expected: tuple[int, int]) -> None:
    assert pricing.downgraded_size(*size, side=side) == expected


@pytest.mark.parametrize(
    ("steps", "sampler", "max_steps", "controlnet", "expected"),
    [
        (30, "k_euler", 40, False, 30),  # free already
        (50, "k_euler", 40, False, 40),
        (50, "k_euler", 40, True, 20),  # ControlNet: 20
        (30, "lcm", 40, False, 10),  # LCM: 10
        (30, "k_heun", 40, False, 20),  # counts twice: 60 > 40, cut to 40 / 2
        (20, "k_heun", 40, False, 20),  # 40 counted: free
        (15, "k_heun", 40, True, 10),  # 30 > 20: 20 / 2
        (5, "k_dpm_adaptive", 20, False, 20),  # counts 40
        (10, "k_heun", 1, False, 1),  # never below one step
        (30, "k_heun", 15, False, 7),  # 15 // 2: whole steps
    ],
)
def test_downgraded_steps(steps: int, sampler: str, max_steps: int, controlnet: bool, expected: int) -> None:
    cut = pricing.downgraded_steps(steps, sampler=sampler, max_steps=max_steps, controlnet=controlnet)
    assert cut == expected
