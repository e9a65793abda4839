"""Image decoding and encoding, always off the event loop."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from concurrent.futures import ThreadPoolExecutor

from PIL import Image, UnidentifiedImageError

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="horde-image")
Image.MAX_IMAGE_PIXELS = 3072 * 3072 * 4  # refuse decompression bombs early


class ImageError(ValueError):
    """The bytes are not a usable image."""


def decode_base64(value: str) -> bytes:
    """Strict base64 (a data: URL prefix is tolerated), or ImageError."""
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError("not valid base64") from exc


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        raise ImageError("not a readable image") from exc
    return image


def _to_webp(image: Image.Image, quality: int) -> bytes:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=quality)
    return out.getvalue()


def _reencode(data: bytes, max_side: int, quality: int) -> tuple[bytes, int, int]:
    image = _open(data)
    if image.width > max_side or image.height > max_side:
        raise ImageError(f"larger than {max_side}x{max_side}")
    try:
        return _to_webp(image, quality), image.width, image.height
    except (OSError, ValueError) as exc:  # e.g. a size WebP cannot hold
        raise ImageError("cannot be stored as WebP") from exc


async def reencode_webp(data: bytes, *, max_side: int = 3072, quality: int = 95) -> tuple[bytes, int, int]:
    """Decode any image and re-encode it as WebP: (bytes, width, height)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, _reencode, data, max_side, quality)


async def image_size(data: bytes) -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    image = await loop.run_in_executor(_POOL, _open, data)
    return image.width, image.height


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
