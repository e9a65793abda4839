"""Small images the bench sends: a worker's "generation" upload and an alchemy source image."""

from __future__ import annotations

import base64
import io
from functools import cache

from PIL import Image


@cache
def webp(size: int = 64) -> bytes:
    """A small gradient WebP."""
    image = Image.new("RGB", (size, size))
    image.putdata([(x * 4 % 256, y * 4 % 256, 128) for y in range(size) for x in range(size)])
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=80)
    return out.getvalue()


@cache
def webp_b64(size: int = 64) -> str:
    return base64.b64encode(webp(size)).decode()
