"""Live defaults (SEMANTICS §1.1-1.3) and schema-level limits of the request models."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from horde.contract import (
    DevTestUserInput,
    GenerationInputKobold,
    GenerationInputStable,
    GenerationMetadataStable,
    InterrogationPopInput,
    ModelInterrogationInputStable,
    ModifyUserInput,
    ModifyWorkerInput,
    PopInputKobold,
    PopInputStable,
    SubmitInputKobold,
    SubmitInputStable,
)

IMAGE = {"prompt": "a lighthouse"}
TEXT = {"prompt": "Once upon a time"}
POP = {"name": "worker"}
ALCHEMY = {"source_image": "https://example.com/a.webp", "forms": [{"name": "caption"}]}

LIVE_DEFAULTS: list[tuple[type[BaseModel], dict[str, Any], str, object]] = [
    (GenerationInputStable, IMAGE, "nsfw", True),
    (GenerationInputStable, IMAGE, "censor_nsfw", True),
    (GenerationInputStable, IMAGE, "validated_backends", False),
    (GenerationInputStable, IMAGE, "trusted_workers", False),
    (GenerationInputStable, IMAGE, "slow_workers", True),
    (GenerationInputStable, IMAGE, "extra_slow_workers", False),
    (GenerationInputStable, IMAGE, "models", ["stable_diffusion"]),
    (GenerationInputStable, IMAGE, "workers", []),
    (GenerationInputStable, IMAGE, "r2", True),
    (GenerationInputStable, IMAGE, "shared", False),
    (GenerationInputStable, IMAGE, "replacement_filter", True),
    (GenerationInputStable, IMAGE, "source_processing", "img2img"),
    (GenerationInputStable, IMAGE, "dry_run", False),
    (GenerationInputStable, IMAGE, "disable_batching", False),
    (GenerationInputStable, IMAGE, "allow_downgrade", False),
    (GenerationInputKobold, TEXT, "models", []),
    (GenerationInputKobold, TEXT, "validated_backends", False),
    (GenerationInputKobold, TEXT, "slow_workers", True),
    (PopInputStable, POP, "nsfw", True),
    (PopInputStable, POP, "max_pixels", 262144),
    (PopInputStable, POP, "allow_img2img", True),
    (PopInputStable, POP, "allow_painting", True),
    (PopInputStable, POP, "allow_unsafe_ipaddr", True),
    (PopInputStable, POP, "allow_post_processing", True),
    (PopInputStable, POP, "allow_controlnet", False),
    (PopInputStable, POP, "allow_sdxl_controlnet", False),
    (PopInputStable, POP, "allow_lora", False),
    (PopInputStable, POP, "limit_max_steps", False),
    (PopInputStable, POP, "extra_slow_worker", False),
    (PopInputStable, POP, "bridge_agent", "unknown:0:unknown"),
    (PopInputStable, POP, "amount", 1),
    (PopInputStable, POP, "threads", 1),
    (PopInputKobold, POP, "max_length", 512),
    (PopInputKobold, POP, "max_context_length", 2048),
    (PopInputKobold, POP, "softprompts", []),
    (InterrogationPopInput, POP, "max_tiles", 80),
    (InterrogationPopInput, POP, "amount", 1),
    (InterrogationPopInput, POP, "bridge_agent", "unknown"),
    (ModelInterrogationInputStable, ALCHEMY, "slow_workers", True),
    (ModelInterrogationInputStable, ALCHEMY, "trusted_workers", False),
    (SubmitInputStable, {"id": "x", "seed": 1}, "state", "ok"),
    (SubmitInputKobold, {"id": "x"}, "seed", 0),
    (DevTestUserInput, {}, "username", "test_user"),
    (DevTestUserInput, {}, "oauth_id", "ci_test_user"),
    (DevTestUserInput, {}, "moderator", True),
    (DevTestUserInput, {}, "trusted", True),
    (DevTestUserInput, {}, "kudos", 10000),
]

IMAGE_PARAM_DEFAULTS = {
    "sampler_name": "k_euler_a",
    "cfg_scale": 5.0,
    "karras": True,
    "steps": 30,
    "n": 1,
    "height": 512,
    "width": 512,
    "tiling": False,
    "hires_fix": False,
    "post_processing": [],
}
TEXT_PARAM_DEFAULTS = {"n": 1, "max_length": 80, "max_context_length": 2048}


@pytest.mark.parametrize(("model", "body", "field", "expected"), LIVE_DEFAULTS)
def test_live_defaults(model: type[BaseModel], body: dict[str, Any], field: str, expected: object) -> None:
    assert getattr(model.model_validate(body), field) == expected


def test_image_params_default_when_absent() -> None:
    params = GenerationInputStable.model_validate(IMAGE).params
    assert {k: getattr(params, k) for k in IMAGE_PARAM_DEFAULTS} == IMAGE_PARAM_DEFAULTS


def test_text_params_default_when_absent() -> None:
    params = GenerationInputKobold.model_validate(TEXT).params
    assert {k: getattr(params, k) for k in TEXT_PARAM_DEFAULTS} == TEXT_PARAM_DEFAULTS


def test_image_models_omitted_differs_from_empty() -> None:
    assert GenerationInputStable.model_validate(IMAGE).models == ["stable_diffusion"]
    assert GenerationInputStable.model_validate({**IMAGE, "models": []}).models == []


def test_steps_given_is_distinguishable_from_default() -> None:
    assert "steps" not in GenerationInputStable.model_validate(IMAGE).params.model_fields_set
    given = GenerationInputStable.model_validate({**IMAGE, "params": {"steps": 30}})
    assert "steps" in given.params.model_fields_set


def test_unknown_keys_are_ignored() -> None:
    body = {**IMAGE, "not_a_field": 1, "params": {"n": 2, "nor_this": True}}
    parsed = GenerationInputStable.model_validate(body)
    assert "not_a_field" not in parsed.model_dump()
    assert parsed.params.n == 2


def _image(**params: object) -> dict[str, Any]:
    return {**IMAGE, "params": params}


def _text(**params: object) -> dict[str, Any]:
    return {**TEXT, "params": params}


REJECTED: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (GenerationInputStable, {"prompt": ""}),
    (GenerationInputStable, {}),
    (GenerationInputStable, _image(n=0)),
    (GenerationInputStable, _image(n=21)),
    (GenerationInputStable, _image(steps=0)),
    (GenerationInputStable, _image(steps=501)),
    (GenerationInputStable, _image(width=100)),
    (GenerationInputStable, _image(height=3136)),
    (GenerationInputStable, _image(width=0)),
    (GenerationInputStable, _image(cfg_scale=100.5)),
    (GenerationInputStable, _image(cfg_scale=-1)),
    (GenerationInputStable, _image(denoising_strength=0)),
    (GenerationInputStable, _image(clip_skip=13)),
    (GenerationInputStable, _image(seed_variation=1001)),
    (GenerationInputStable, _image(facefixer_strength=1.5)),
    (GenerationInputStable, _image(sampler_name="k_bogus")),
    (GenerationInputStable, _image(control_type="bogus")),
    (GenerationInputStable, _image(workflow="bogus")),
    (GenerationInputStable, _image(post_processing=["GFPGAN", "GFPGAN"])),
    (GenerationInputStable, _image(post_processing=["bogus"])),
    (GenerationInputStable, _image(loras=[{"name": "x", "model": 5.5}])),
    (GenerationInputStable, _image(loras=[{"name": ""}])),
    (GenerationInputStable, _image(loras=[{"name": "x", "inject_trigger": "t" * 31}])),
    (GenerationInputStable, _image(tis=[{"name": "x", "inject_ti": "bogus"}])),
    (GenerationInputStable, _image(extra_texts=[{"text": "x", "reference": "qr"}])),
    (GenerationInputStable, {**IMAGE, "source_processing": "bogus"}),
    (GenerationInputStable, {**IMAGE, "webhook": "https://"}),
    (GenerationInputStable, {**IMAGE, "style": "ab"}),
    (GenerationInputStable, {**IMAGE, "extra_source_images": [{"image": ""}]}),
    (GenerationInputKobold, {}),
    (GenerationInputKobold, _text(max_length=15)),
    (GenerationInputKobold, _text(max_length=4097)),
    (GenerationInputKobold, _text(max_context_length=79)),
    (GenerationInputKobold, _text(max_context_length=1_048_577)),
    (GenerationInputKobold, _text(n=21)),
    (GenerationInputKobold, _text(top_k=201)),
    (GenerationInputKobold, _text(top_p=0)),
    (GenerationInputKobold, _text(temperature=5.1)),
    (GenerationInputKobold, _text(rep_pen=0.9)),
    (GenerationInputKobold, _text(rep_pen_range=4097)),
    (GenerationInputKobold, {**TEXT, "softprompt": ""}),
    (PopInputStable, {}),
    (PopInputStable, {**POP, "threads": 51}),
    (PopInputStable, {**POP, "amount": 21}),
    (PopInputStable, {**POP, "amount": 0}),
    (PopInputStable, {**POP, "models": ["ab"]}),
    (PopInputStable, {**POP, "bridge_agent": "a" * 1001}),
    (InterrogationPopInput, {**POP, "threads": 101}),
    (InterrogationPopInput, {**POP, "max_tiles": 257}),
    (InterrogationPopInput, {**POP, "max_tiles": 0}),
    (InterrogationPopInput, {**POP, "forms": ["bogus"]}),
    (ModelInterrogationInputStable, {"forms": [{"name": "caption"}]}),
    (ModelInterrogationInputStable, {**ALCHEMY, "forms": [{"name": "bogus"}]}),
    (SubmitInputStable, {"id": "x"}),
    (SubmitInputStable, {"id": "x", "seed": 1, "state": "bogus"}),
    (SubmitInputStable, {"id": "x", "seed": 1, "gen_metadata": [{"type": "bogus", "value": "csam"}]}),
    (SubmitInputKobold, {"id": "x", "gen_metadata": [{"type": "lora", "value": "too_long"}]}),
    (GenerationMetadataStable, {"type": "lora", "value": "see_ref", "ref": "r" * 256}),
    (ModifyUserInput, {"concurrency": 501}),
    (ModifyUserInput, {"usage_multiplier": 0.05}),
    (ModifyUserInput, {"username": "ab"}),
    (ModifyUserInput, {"contact": "a@b"}),
    (ModifyWorkerInput, {"name": "abcd"}),
    (ModifyWorkerInput, {"info": "i" * 1001}),
    (ModifyWorkerInput, {"team": "t" * 37}),
]

ACCEPTED: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (GenerationInputStable, _image(n=20, steps=500, width=3072, height=64, cfg_scale=100, clip_skip=12)),
    (GenerationInputStable, _image(post_processing=["GFPGAN", "RealESRGAN_x4plus"], denoising_strength=1)),
    (GenerationInputStable, _image(loras=[{"name": "x", "model": -5, "clip": 5}], seed="any text")),
    (GenerationInputKobold, _text(max_length=4096, max_context_length=1_048_576, top_k=200, top_p=0.001)),
    (PopInputStable, {**POP, "threads": 50, "amount": 20}),
    (InterrogationPopInput, {**POP, "threads": 100, "max_tiles": 256, "forms": ["caption", "GFPGAN"]}),
    (SubmitInputStable, {"id": "x", "seed": 1, "state": "csam", "generation": "R2"}),
    (ModifyUserInput, {"concurrency": 0, "usage_multiplier": 10}),
]


@pytest.mark.parametrize(("model", "body"), REJECTED)
def test_out_of_range_is_rejected(model: type[BaseModel], body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)


@pytest.mark.parametrize(("model", "body"), ACCEPTED)
def test_limits_are_inclusive(model: type[BaseModel], body: dict[str, Any]) -> None:
    model.model_validate(body)
