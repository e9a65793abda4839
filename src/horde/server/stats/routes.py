"""`/stats/img/*` and `/stats/text/*` (SEMANTICS.md 1.8)."""

from __future__ import annotations

from fastapi import APIRouter

from horde.contract import ImgModelStats, StatsImgTotals, StatsTxtTotals, TxtModelStats
from horde.server.auth import HordeDep, ReadConn
from horde.server.kit.routing import HordeRoute
from horde.server.stats import service

router = APIRouter(tags=["v2"], route_class=HordeRoute)


@router.get("/stats/img/totals", response_model=StatsImgTotals)
async def get_image_totals(horde: HordeDep, conn: ReadConn) -> StatsImgTotals:
    return await service.image_totals(conn, horde=horde)


@router.get("/stats/img/models", response_model=ImgModelStats)
async def get_image_models(horde: HordeDep, conn: ReadConn, model_state: str = "known") -> ImgModelStats:
    return await service.image_models(conn, horde=horde, model_state=model_state)


@router.get("/stats/text/totals", response_model=StatsTxtTotals)
async def get_text_totals(horde: HordeDep, conn: ReadConn) -> StatsTxtTotals:
    return await service.text_totals(conn, horde=horde)


@router.get("/stats/text/models", response_model=TxtModelStats)
async def get_text_models(horde: HordeDep, conn: ReadConn, model_state: str = "all") -> TxtModelStats:
    return await service.text_models(conn, horde=horde, model_state=model_state)
