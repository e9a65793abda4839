"""Result images a worker uploads to the signed PUT URL of its job (`r2_upload`).

An upload is taken once, while the job is leased (before its submit), and only when it is an image of
a stored format whose declared size fits the job (its request's size, times the largest upscaler when
it asks for one) and whose bytes are no more than that size needs. Nothing is decoded: the header says
what the bytes are.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from sqlalchemy import select

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.images.codec import ImageError, check_sides, image_header
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.models import JobState
from horde.server.jobs.store import jobs, requests
from horde.server.state import Horde

UPLOAD_FORMATS = ("WEBP", "PNG", "JPEG")
MAX_UPLOAD = 32 * 1024 * 1024
_GONE = "This upload URL is no longer valid: the job was submitted, expired or already uploaded"


def _job_id(key: str) -> uuid.UUID:
    name, _, extension = key.rpartition(".")
    try:
        if extension != "webp":
            raise ValueError(key)
        return uuid.UUID(name)
    except ValueError:
        raise HordeError(RC.Forbidden, "This URL does not take uploads", status_code=403) from None


async def _bounds(horde: Horde, job_id: uuid.UUID) -> tuple[int, int]:
    async with horde.db.autocommit() as conn:
        row = (
            await conn.execute(
                select(jobs.c.state, jobs.c.kind, jobs.c.form, requests.c.payload)
                .join(requests, requests.c.id == jobs.c.request_id)
                .where(jobs.c.id == job_id)
            )
        ).first()
    if row is None or row.state != JobState.PROCESSING:
        raise HordeError(RC.Forbidden, _GONE, status_code=403)
    bounds = KINDS[row.kind].upload_bounds(row.payload, row.form)
    if bounds is None:
        raise HordeError(RC.Forbidden, "This job's result is not an image", status_code=403)
    return bounds


async def _read(stream: AsyncIterator[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:  # stop reading at the limit instead of buffering it all
        size += len(chunk)
        if size > limit:
            raise HordeError("PayloadTooLarge", "The upload is too large", status_code=413)
        chunks.append(chunk)
    return b"".join(chunks)


async def receive_upload(horde: Horde, key: str, stream: AsyncIterator[bytes], *, owner: object) -> None:
    """Store a worker's result image under `key` (`<job id>.webp`), once; HordeError otherwise."""
    width, height = await _bounds(horde, _job_id(key))
    # no stored format needs more than raw RGBA (plus PNG's filter bytes and headers) for its size
    data = await _read(stream, min(MAX_UPLOAD, width * height * 4 + height + 65536))
    if not data:
        raise HordeError(RC.BadRequest, "Empty upload", status_code=400)
    try:
        header = await image_header(data, owner=owner)
        if header.format not in UPLOAD_FORMATS:
            raise ImageError(f"{header.format} is not a stored format")
        check_sides(header, width, height)
    except ImageError as exc:
        message = f"The upload must be a WebP, PNG or JPEG image of at most {width}x{height}: {exc}"
        raise HordeError(RC.ImageValidationFailed, message) from exc
    if await horde.storage.put_new(key, data):
        return
    if await horde.storage.get(key) != data:  # a retry of the same upload is fine
        raise HordeError(RC.Forbidden, _GONE, status_code=403)
