"""`/operations/*` (SEMANTICS.md 1.12): IP timeouts and blocked worker addresses, moderators only."""

from __future__ import annotations

from fastapi import APIRouter

from horde.contract import (
    AddTimeoutIPInput,
    AddWorkerTimeout,
    DeleteTimeoutIPInput,
    IPTimeout,
    SimpleResponse,
)
from horde.server.auth import Conn, CurrentUser, HordeDep, ReadConn
from horde.server.kit.routing import HordeRoute
from horde.server.operations import service

router = APIRouter(tags=["v2"], route_class=HordeRoute)


@router.get("/operations/ipaddr", response_model=list[IPTimeout])
async def get_ip_timeouts(horde: HordeDep, user: CurrentUser, conn: ReadConn) -> list[IPTimeout]:
    return await service.list_timeouts(conn, horde=horde)


@router.post("/operations/ipaddr", response_model=SimpleResponse)
async def post_ip_timeout(
    body: AddTimeoutIPInput, horde: HordeDep, user: CurrentUser, conn: Conn
) -> SimpleResponse:
    return await service.add_timeout(conn, horde=horde, ipaddr=body.ipaddr, hours=body.hours)


@router.delete("/operations/ipaddr", response_model=SimpleResponse)
async def delete_ip_timeout(
    body: DeleteTimeoutIPInput, horde: HordeDep, user: CurrentUser, conn: Conn
) -> SimpleResponse:
    return await service.delete_timeout(conn, horde=horde, ipaddr=body.ipaddr)


@router.get("/operations/ipaddr/{ipaddr}", response_model=list[IPTimeout])
async def get_ip_timeout(ipaddr: str, horde: HordeDep, user: CurrentUser, conn: ReadConn) -> list[IPTimeout]:
    return await service.find_timeouts(conn, horde=horde, ipaddr=ipaddr)


@router.put("/operations/block_worker_ipaddr/{worker_id}", response_model=SimpleResponse)
async def put_worker_ip_block(
    worker_id: str, body: AddWorkerTimeout, horde: HordeDep, user: CurrentUser, conn: Conn
) -> SimpleResponse:
    return await service.block_worker_ip(conn, horde=horde, worker_id=worker_id, days=body.days)


@router.delete("/operations/block_worker_ipaddr/{worker_id}", response_model=SimpleResponse)
async def delete_worker_ip_block(
    worker_id: str, horde: HordeDep, user: CurrentUser, conn: Conn
) -> SimpleResponse:
    return await service.unblock_worker_ip(conn, horde=horde, worker_id=worker_id)
