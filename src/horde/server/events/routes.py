"""Pushed status routes (an extension): `GET .../status/{id}/events` per kind, as Server-Sent Events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from horde.server.auth import HordeDep
from horde.server.events import service
from horde.server.kit.routing import HordeRoute

router = APIRouter(tags=["v2"], route_class=HordeRoute)
_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "status, generation and done events"}
}


async def _stream(request: Request, horde: HordeDep, kind: str, id: str) -> StreamingResponse:
    first = await service.opened(horde, kind=kind, raw_id=id)  # an unknown id is a 404 before the stream
    body = service.events(horde, kind=kind, raw_id=id, first=first, disconnected=request.is_disconnected)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


@router.get("/generate/status/{id}/events", response_class=StreamingResponse, responses=_STREAM)
async def get_image_events(id: str, request: Request, horde: HordeDep) -> StreamingResponse:
    return await _stream(request, horde, "image", id)


@router.get("/generate/text/status/{id}/events", response_class=StreamingResponse, responses=_STREAM)
async def get_text_events(id: str, request: Request, horde: HordeDep) -> StreamingResponse:
    return await _stream(request, horde, "text", id)


@router.get("/interrogate/status/{id}/events", response_class=StreamingResponse, responses=_STREAM)
async def get_alchemy_events(id: str, request: Request, horde: HordeDep) -> StreamingResponse:
    return await _stream(request, horde, "alchemy", id)
