"""`/filters` (SEMANTICS.md 1.10): moderators only (the access table's door)."""

from __future__ import annotations

from fastapi import APIRouter

from horde.contract import (
    FilterCheck,
    FilterDetails,
    FilterPromptSuspicion,
    FilterRegex,
    PatchExistingFilter,
    PutNewFilter,
    SimpleResponse,
)
from horde.server.auth import Conn, CurrentUser, HordeDep, ReadConn
from horde.server.filters import service
from horde.server.filters.screen import check_prompt
from horde.server.kit.routing import HordeRoute

router = APIRouter(tags=["v2"], route_class=HordeRoute)


@router.get("/filters", response_model=list[FilterDetails])
async def get_filters(
    user: CurrentUser, conn: ReadConn, filter_type: int | None = None, contains: str | None = None
) -> list[FilterDetails]:
    return await service.list_filters(conn, filter_type=filter_type, contains=contains)


@router.put("/filters", response_model=FilterDetails)
async def put_filter(body: PutNewFilter, horde: HordeDep, user: CurrentUser, conn: Conn) -> FilterDetails:
    return await service.put_filter(
        conn, actor=user, body=body, now=horde.clock.utcnow(),
        timeout=horde.settings.filter_probe_timeout, on_change=horde.notifier.filters_changed,
    )  # fmt: skip


@router.post("/filters", response_model=FilterPromptSuspicion)
async def post_filter_check(body: FilterCheck, horde: HordeDep, user: CurrentUser) -> FilterPromptSuspicion:
    return await check_prompt(horde, prompt=body.prompt, filter_type=body.filter_type)


@router.get("/filters/regex", response_model=list[FilterRegex])
async def get_filter_regex(
    horde: HordeDep, user: CurrentUser, filter_type: int | None = None
) -> list[FilterRegex]:
    return service.filter_regexes(await horde.filters.current(horde.db), filter_type=filter_type)


@router.get("/filters/{filter_id}", response_model=FilterDetails)
async def get_filter(filter_id: str, user: CurrentUser, conn: ReadConn) -> FilterDetails:
    return await service.get_filter(conn, raw_id=filter_id)


@router.patch("/filters/{filter_id}", response_model=FilterDetails)
async def patch_filter(
    filter_id: str, body: PatchExistingFilter, horde: HordeDep, user: CurrentUser, conn: Conn
) -> FilterDetails:
    return await service.patch_filter(
        conn, actor=user, raw_id=filter_id, body=body, now=horde.clock.utcnow(),
        timeout=horde.settings.filter_probe_timeout, on_change=horde.notifier.filters_changed,
    )  # fmt: skip


@router.delete("/filters/{filter_id}", response_model=SimpleResponse)
async def delete_filter(filter_id: str, horde: HordeDep, user: CurrentUser, conn: Conn) -> SimpleResponse:
    return await service.delete_filter(conn, raw_id=filter_id, on_change=horde.notifier.filters_changed)
