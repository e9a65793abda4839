"""`/sharedkeys`, `/sharedkeys/{id}` (SEMANTICS.md 1.11)."""

from __future__ import annotations

from fastapi import APIRouter

from horde.contract import SharedKeyDetails, SharedKeyInput, SharedKeyPatch, SimpleResponse
from horde.server.auth import Conn, CurrentUser, HordeDep, ReadConn
from horde.server.kit.routing import HordeRoute
from horde.server.sharedkeys import service

router = APIRouter(tags=["v2"], route_class=HordeRoute)


@router.put("/sharedkeys", response_model=SharedKeyDetails)
async def put_shared_key(
    body: SharedKeyInput, horde: HordeDep, user: CurrentUser, conn: Conn
) -> SharedKeyDetails:
    return await service.create_shared_key(conn, horde=horde, actor=user, body=body)


@router.get("/sharedkeys/{sharedkey_id}", response_model=SharedKeyDetails)
async def get_shared_key(sharedkey_id: str, horde: HordeDep, conn: ReadConn) -> SharedKeyDetails:
    return await service.get_shared_key(conn, horde=horde, raw_id=sharedkey_id)


@router.patch("/sharedkeys/{sharedkey_id}", response_model=SharedKeyDetails)
async def patch_shared_key(
    sharedkey_id: str, body: SharedKeyPatch, horde: HordeDep, user: CurrentUser, conn: Conn
) -> SharedKeyDetails:
    return await service.modify_shared_key(conn, horde=horde, actor=user, raw_id=sharedkey_id, body=body)


@router.delete("/sharedkeys/{sharedkey_id}", response_model=SimpleResponse)
async def delete_shared_key(
    sharedkey_id: str, horde: HordeDep, user: CurrentUser, conn: Conn
) -> SimpleResponse:
    return await service.delete_shared_key(conn, horde=horde, actor=user, raw_id=sharedkey_id)
