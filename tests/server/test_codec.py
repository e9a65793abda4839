"""The codec threads: one user's images never hold them all, and sizes are judged by the header."""

from __future__ import annotations

import asyncio
import io
import threading

import pytest
from PIL import Image

from horde.server.images.codec import CodecPool, ImageError, TooLarge, read_header, reencode_webp


async def test_one_owner_leaves_a_thread_for_others() -> None:
    pool = CodecPool(threads=2)
    release = threading.Event()

    def slow() -> str:
        release.wait(30)
        return "slow"

    flood = [asyncio.create_task(pool.run("flooder", slow)) for _ in range(4)]
    await asyncio.sleep(0)
    try:
        assert await asyncio.wait_for(pool.run("someone else", lambda: "quick"), 10) == "quick"
        assert not any(task.done() for task in flood)
    finally:
        release.set()
    assert await asyncio.gather(*flood) == ["slow"] * 4


def _png(width: int, height: int, mode: str = "1") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, format="PNG")
    return out.getvalue()


async def test_sizes_are_checked_before_decoding() -> None:
    assert read_header(_png(4000, 10)).width == 4000  # the header alone: nothing decoded
    with pytest.raises(TooLarge):
        await reencode_webp(_png(3073, 8))
    with pytest.raises(TooLarge):
        await reencode_webp(_png(64, 64), max_side=32)
    with pytest.raises(ImageError):
        await reencode_webp(b"<html></html>")
    data, width, height = await reencode_webp(_png(64, 48, "RGB"))
    assert (width, height) == (64, 48) and read_header(data).format == "WEBP"
