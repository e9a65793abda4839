"""`/documents/terms`, `/documents/privacy`, `/documents/sponsors`."""

from __future__ import annotations

from fastapi import APIRouter

from horde.contract import HordeDocument
from horde.server.auth import HordeDep
from horde.server.documents import service
from horde.server.kit.routing import HordeRoute

router = APIRouter(tags=["v2"], route_class=HordeRoute)


@router.get("/documents/terms", response_model=HordeDocument)
async def get_terms(horde: HordeDep, format: str = "html") -> HordeDocument:
    return await service.document(horde, name="terms", fmt=format)


@router.get("/documents/privacy", response_model=HordeDocument)
async def get_privacy(horde: HordeDep, format: str = "html") -> HordeDocument:
    return await service.document(horde, name="privacy", fmt=format)


@router.get("/documents/sponsors", response_model=HordeDocument)
async def get_sponsors(horde: HordeDep, format: str = "html") -> HordeDocument:
    return await service.document(horde, name="sponsors", fmt=format)
