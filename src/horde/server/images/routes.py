"""The local storage backend's signed object URLs (outside /api: they are not part of API v2)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from horde.server.auth import HordeDep
from horde.server.errors import HordeError
from horde.server.images.storage import LocalStorage

router = APIRouter(include_in_schema=False)
MAX_UPLOAD = 32 * 1024 * 1024


def _local(horde: HordeDep) -> LocalStorage:
    if not isinstance(horde.storage, LocalStorage):
        raise HordeError("NotFound", "Not Found", status_code=404)
    return horde.storage


def _check(storage: LocalStorage, method: str, key: str, expires: int, signature: str) -> None:
    if not storage.verify(method, key, expires, signature):
        raise HordeError("Forbidden", "This URL is invalid or has expired", status_code=403)


@router.get("/objects/{key}")
async def get_object(key: str, expires: int, signature: str, horde: HordeDep) -> Response:
    storage = _local(horde)
    _check(storage, "GET", key, expires, signature)
    data = await storage.get(key)
    if data is None:
        raise HordeError("NotFound", "Not Found", status_code=404)
    return Response(data, media_type="image/webp")


@router.put("/objects/{key}")
async def put_object(key: str, expires: int, signature: str, request: Request, horde: HordeDep) -> Response:
    storage = _local(horde)
    _check(storage, "PUT", key, expires, signature)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # stop reading at the limit instead of buffering it all
        size += len(chunk)
        if size > MAX_UPLOAD:
            raise HordeError("PayloadTooLarge", "The upload is too large", status_code=413)
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise HordeError("BadRequest", "Empty upload", status_code=400)
    await storage.put(key, data)
    return Response(status_code=200)
