"""`/status/*` and `/.well-known/serviceinfo`."""

from __future__ import annotations

from fastapi import APIRouter

from horde import __version__
from horde.contract import (
    ActiveModel,
    HeartbeatResponse,
    HordeModes,
    HordeModesInput,
    HordePerformance,
    Newspiece,
    ServiceInfo,
)
from horde.server.auth import Conn, CurrentUser, HordeDep, OptionalUser, ReadConn
from horde.server.kit.routing import HordeRoute
from horde.server.operations import service as operations
from horde.server.status import service

router = APIRouter(tags=["v2"], route_class=HordeRoute)
root_router = APIRouter(include_in_schema=False, route_class=HordeRoute)


@router.get("/status/heartbeat", response_model=HeartbeatResponse)
async def get_heartbeat(horde: HordeDep) -> HeartbeatResponse:
    return await service.heartbeat(horde)


@router.get("/status/models", response_model=list[ActiveModel])
async def get_models(
    horde: HordeDep,
    type: str = "image",
    min_count: int | None = None,
    max_count: int | None = None,
    model_state: str = "all",
) -> list[ActiveModel]:
    return await service.active_models(
        horde, model_type=type, min_count=min_count, max_count=max_count, model_state=model_state
    )


@router.get("/status/models/{model_name:path}", response_model=list[ActiveModel])
async def get_model(model_name: str, horde: HordeDep) -> list[ActiveModel]:
    return await service.model_status(horde, name=model_name)


@router.get("/status/performance", response_model=HordePerformance)
async def get_performance(horde: HordeDep, conn: ReadConn) -> HordePerformance:
    return await service.performance(conn, horde=horde)


@router.get("/status/modes", response_model=HordeModes)
async def get_modes(horde: HordeDep, viewer: OptionalUser) -> HordeModes:
    return await operations.get_modes(horde, viewer=viewer)


@router.put("/status/modes", response_model=HordeModes)
async def put_modes(body: HordeModesInput, horde: HordeDep, user: CurrentUser, conn: Conn) -> HordeModes:
    return await operations.set_modes(conn, horde=horde, actor=user, body=body)


@router.get("/status/news", response_model=list[Newspiece])
async def get_news(horde: HordeDep) -> list[Newspiece]:
    return await service.news(horde)


@root_router.get("/.well-known/serviceinfo", response_model=ServiceInfo)
async def get_serviceinfo(horde: HordeDep) -> ServiceInfo:
    return ServiceInfo(
        software={"name": "horde", "version": __version__, "repository": "https://github.com/horde/horde"},
        api={"aihorde": {"name": "AI Horde API", "version": "2.5",
                         "base_url": f"{horde.settings.effective_public_url}/api/v2"}},
    )  # fmt: skip
