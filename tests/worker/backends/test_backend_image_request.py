"""Reading an image job's payload and choosing a scheduler (pure; no torch needed)."""

from __future__ import annotations

import pytest

from horde.worker.backends import UnsupportedJob
from horde.worker.backends.image import SAMPLERS, choose_sampler, read_payload

HORDE_SAMPLERS = [
    "k_lms",
    "k_heun",
    "k_euler",
    "k_euler_a",
    "k_dpm_2",
    "k_dpm_2_a",
    "k_dpm_fast",
    "k_dpm_adaptive",
    "k_dpmpp_2s_a",
    "k_dpmpp_2m",
    "dpmsolver",
    "k_dpmpp_sde",
    "DDIM",
    "lcm",
]


def test_every_horde_sampler_has_a_scheduler() -> None:
    assert set(SAMPLERS) == set(HORDE_SAMPLERS)
    assert choose_sampler("nonsense")[0] == "k_euler_a"
    assert choose_sampler(None)[0] == "k_euler_a"


def test_payload_is_read_as_the_horde_sends_it() -> None:
    request = read_payload(
        {
            "prompt": "a lighthouse at dusk ### blurry, text",
            "seed": 4294967295,
            "ddim_steps": 12,
            "sampler_name": "k_dpmpp_2m",
            "cfg_scale": 6.5,
            "width": 640,
            "height": 384,
            "n_iter": 3,
            "karras": False,
            "clip_skip": 2,
            "denoising_strength": 0.4,
            "hires_fix": True,
        }
    )
    assert request.prompt == "a lighthouse at dusk"
    assert request.negative_prompt == "blurry, text"
    assert request.seeds == (4294967295, 0, 1)  # seed + i, wrapped to 32 bits
    assert (request.steps, request.cfg_scale, request.width, request.height) == (12, 6.5, 640, 384)
    assert request.scheduler.scheduler == "DPMSolverMultistepScheduler"
    assert request.karras is False
    assert request.clip_skip == 1
    assert request.denoising_strength == 0.4
    assert {n.field: n.how for n in request.notes} == {"hires_fix": "dropped"}


def test_defaults_and_approximated_samplers() -> None:
    request = read_payload({"prompt": "x", "sampler_name": "k_dpmpp_sde"})
    assert len(request.seeds) == 1
    assert (request.steps, request.width, request.height, request.karras) == (30, 512, 512, True)
    assert request.clip_skip == 0
    assert [n.field for n in request.notes] == ["sampler_name"]
    assert read_payload({"prompt": "x", "seed": "12"}).seeds == (12,)


@pytest.mark.parametrize(
    ("payload", "processing"),
    [
        ({"prompt": "x", "control_type": "canny"}, None),
        ({"prompt": "x"}, "inpainting"),
        ({"prompt": "x", "loras": [{"name": "123"}]}, None),
    ],
)
def test_features_the_backend_lacks_fail_the_job(payload: dict[str, object], processing: str | None) -> None:
    with pytest.raises(UnsupportedJob):
        read_payload(payload, source_processing=processing)
