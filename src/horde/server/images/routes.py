"""The local storage backend's signed object URLs (outside /api: they are not part of API v2)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from horde.server.auth import HordeDep
from horde.server.clientip import client_ip
from horde.server.errors import HordeError
from horde.server.images.codec import media_type
from horde.server.images.storage import LocalStorage
from horde.server.jobs.uploads import receive_upload
from horde.server.kit.routing import HordeRoute

router = APIRouter(include_in_schema=False, route_class=HordeRoute)
# what is served is what a worker or client sent: never let a browser read it as anything else
_SERVE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


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
    return Response(data, media_type=media_type(data), headers=_SERVE_HEADERS)


@router.put("/objects/{key}")
async def put_object(key: str, expires: int, signature: str, request: Request, horde: HordeDep) -> Response:
    _check(_local(horde), "PUT", key, expires, signature)
    await receive_upload(horde, key, request.stream(), owner=client_ip(request.scope))
    return Response(status_code=200)
