"""The diffusers backend on a TINY Stable Diffusion pipeline built from small configs with RANDOM weights.

No real checkpoint can be had here (nothing may be downloaded), so the test builds a UNet, VAE and CLIP
text encoder of a few thousand parameters, a hand-written tokenizer vocabulary, saves the pipeline as
a diffusers folder and points the backend at it. The images are noise-like; the test checks the real
code path: loading, seeds, samplers, sizes, batches, img2img and cancellation. Skipped without torch
(the ``image`` extra).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests import needs

torch = needs.module("torch", extra="image")
diffusers = needs.module("diffusers", extra="image")
transformers = needs.module("transformers", extra="image")

from PIL import Image, ImageChops, ImageStat  # noqa: E402

from horde.worker.backends import BackendUnavailable, ImageBackend, UnsupportedJob  # noqa: E402
from horde.worker.backends.image import DiffusersBackend  # noqa: E402

pytestmark = pytest.mark.xdist_group("backend-image")


def _tokenizer(folder: Path) -> Any:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens = ["<|startoftext|>", "<|endoftext|>", "!", *letters, *(f"{c}</w>" for c in letters)]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return transformers.CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
    )


def build_tiny_pipeline(folder: Path) -> Path:
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = diffusers.AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=4,
    )
    text = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
            vocab_size=64,
            max_position_embeddings=77,
        )
    )
    scheduler = diffusers.EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    folder.mkdir()
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=_tokenizer(folder),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    target = folder / "tiny-sd"
    pipe.save_pretrained(target)
    return target


@pytest.fixture(scope="module")
async def tiny(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DiffusersBackend]:
    checkpoint = build_tiny_pipeline(tmp_path_factory.mktemp("sd") / "build")
    backend = DiffusersBackend(checkpoint, models=["tiny-random-sd"], device="cpu", threads=1)
    await backend.load()
    yield backend
    await backend.close()


def payload(**overrides: Any) -> dict[str, Any]:
    base = {
        "prompt": "a red fox###blurry",
        "seed": 42,
        "ddim_steps": 3,
        "sampler_name": "k_euler",
        "cfg_scale": 7.0,
        "width": 64,
        "height": 64,
        "n_iter": 1,
        "karras": True,
    }
    return base | overrides


def different(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean)


async def test_batch_sizes_and_seeds(tiny: DiffusersBackend) -> None:
    assert isinstance(tiny, ImageBackend)
    assert tiny.models == ("tiny-random-sd",)
    images = await tiny.generate(payload(n_iter=2, width=96, height=64))
    assert [g.seed for g in images] == [42, 43]
    assert all(g.image.size == (96, 64) for g in images)
    assert different(images[0].image, images[1].image) > 0


async def test_same_seed_same_pixels_and_samplers_matter(tiny: DiffusersBackend) -> None:
    (first,) = await tiny.generate(payload())
    (again,) = await tiny.generate(payload())
    assert different(first.image, again.image) == 0
    for sampler in ("k_euler_a", "k_dpmpp_2m", "DDIM", "k_heun", "k_lms"):
        (other,) = await tiny.generate(payload(sampler_name=sampler))
        assert different(first.image, other.image) > 0, sampler


async def test_img2img_follows_denoising_strength(tiny: DiffusersBackend) -> None:
    source = Image.new("RGB", (64, 64), (250, 250, 250))
    (light,) = await tiny.generate(payload(denoising_strength=0.05, ddim_steps=20), source_image=source)
    (heavy,) = await tiny.generate(payload(denoising_strength=1.0, ddim_steps=20), source_image=source)
    assert light.image.size == (64, 64)
    assert different(light.image, source) < different(heavy.image, source)


async def test_unsupported_features_and_cancel(tiny: DiffusersBackend) -> None:
    with pytest.raises(UnsupportedJob):
        await tiny.generate(payload(control_type="canny"), source_image=Image.new("RGB", (64, 64)))
    started = time.monotonic()
    await tiny.generate(payload(ddim_steps=40))
    per_step = (time.monotonic() - started) / 40
    task = asyncio.create_task(tiny.generate(payload(ddim_steps=1000)))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.monotonic()
    (after,) = await tiny.generate(payload(ddim_steps=1))
    # The 1000-step job was interrupted: the next job did not wait for (most of) its steps.
    assert time.monotonic() - started < per_step * 500
    assert after.image.size == (64, 64)


async def test_missing_checkpoint_is_unavailable(tmp_path: Path) -> None:
    backend = DiffusersBackend(tmp_path / "missing.safetensors")
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await backend.load()
    await backend.close()
