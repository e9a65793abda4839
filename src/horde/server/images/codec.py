"""Image decoding and encoding, always off the event loop, never of more pixels than a kind allows.

An image's declared size is read from its header (Pillow's `open` decodes nothing) and checked before
any decoding: a few kilobytes of PNG can declare gigapixels. Pillow's own bomb warning is an error too.
The codec threads are shared fairly: one owner (a user) holds at most all threads but one, so a flood
of large images from one user cannot keep another user's image waiting.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from PIL import Image, UnidentifiedImageError

T = TypeVar("T")

THREADS = 2
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
MAX_DECODE_SIDE = 3072  # sources and results the server decodes (SEMANTICS.md 7)
MAX_HEADER_PIXELS = 255 * 512 * 512  # the largest image any kind takes (alchemy: 255 tiles, not decoded)
# Pillow checks this when it reads a header: a last line behind the per-kind checks
Image.MAX_IMAGE_PIXELS = MAX_HEADER_PIXELS
# process-wide, set once: Pillow only warns between MAX_IMAGE_PIXELS and twice that
warnings.simplefilter("error", Image.DecompressionBombWarning)

_MEDIA_TYPES = {"WEBP": "image/webp", "PNG": "image/png", "JPEG": "image/jpeg"}


class ImageError(ValueError):
    """The bytes are not a usable image."""


class TooLarge(ImageError):
    """The image declares more pixels than allowed."""


@dataclass(frozen=True, slots=True)
class Header:
    format: str
    width: int
    height: int

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES.get(self.format, "application/octet-stream")


def decode_base64(value: str) -> bytes:
    """Strict base64 (a data: URL prefix is tolerated), or ImageError."""
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError("not valid base64") from exc


_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)


def _open(data: bytes, formats: tuple[str, ...] = FORMATS) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=formats)  # reads the header only
    except _BOMB as exc:
        raise TooLarge(f"larger than {MAX_HEADER_PIXELS} pixels") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError("not a readable image") from exc


def read_header(data: bytes, *, formats: tuple[str, ...] = FORMATS) -> Header:
    """Format and declared size, without decoding a pixel."""
    with _open(data, formats) as image:
        return Header(str(image.format), image.width, image.height)


def check_sides(header: Header, max_width: int, max_height: int) -> None:
    if not (0 < header.width <= max_width and 0 < header.height <= max_height):
        raise TooLarge(f"larger than {max_width}x{max_height}")


def media_type(data: bytes) -> str:
    """The content type of a stored object, from its magic bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    return "application/octet-stream"


def _to_webp(image: Image.Image, quality: int) -> bytes:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=quality)
    return out.getvalue()


def _reencode(data: bytes, max_side: int, quality: int) -> tuple[bytes, int, int]:
    with _open(data) as image:
        check_sides(Header(str(image.format), image.width, image.height), max_side, max_side)
        try:
            image.load()
        except (UnidentifiedImageError, OSError, ValueError, *_BOMB) as exc:
            raise ImageError("not a readable image") from exc
        try:
            return _to_webp(image, quality), image.width, image.height
        except (OSError, ValueError) as exc:  # e.g. a size WebP cannot hold
            raise ImageError("cannot be stored as WebP") from exc


class CodecPool:
    """The codec threads, with a lane per owner that holds at most `THREADS - 1` of them."""

    def __init__(self, threads: int = THREADS) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="horde-image")
        self._per_owner = max(1, threads - 1)
        self._lanes: dict[object, tuple[asyncio.Semaphore, int]] = {}  # owner -> (lane, users)

    async def run(self, owner: object, fn: Callable[..., T], *args: object) -> T:
        lane, users = self._lanes.get(owner) or (asyncio.Semaphore(self._per_owner), 0)
        self._lanes[owner] = (lane, users + 1)
        try:
            async with lane:
                return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            lane, users = self._lanes[owner]
            if users == 1:
                del self._lanes[owner]
            else:
                self._lanes[owner] = (lane, users - 1)


POOL = CodecPool()


async def reencode_webp(
    data: bytes, *, max_side: int = MAX_DECODE_SIDE, quality: int = 95, owner: object = None
) -> tuple[bytes, int, int]:
    """Decode an image of at most `max_side` per side and re-encode it as WebP: (bytes, width, height)."""
    return await POOL.run(owner, _reencode, data, min(max_side, MAX_DECODE_SIDE), quality)


async def image_header(data: bytes, *, owner: object = None) -> Header:
    """The header of an image that is stored as it came (nothing decoded)."""
    return await POOL.run(owner, read_header, data)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
