"""`/workers`, `/workers/{id}`, `/workers/name/{name}` (SEMANTICS.md 1.4)."""

from __future__ import annotations

from fastapi import APIRouter

from horde.contract import DeletedWorker, ModifyWorker, ModifyWorkerInput, WorkerDetails
from horde.server.auth import Conn, CurrentUser, HordeDep, OptionalUser, ReadConn
from horde.server.kit.routing import HordeRoute
from horde.server.workers import details

router = APIRouter(tags=["v2"], route_class=HordeRoute)


@router.get("/workers", response_model=list[WorkerDetails])
async def get_workers(
    horde: HordeDep, viewer: OptionalUser, conn: ReadConn, type: str = "", name: str = ""
) -> list[WorkerDetails]:
    return await details.list_workers(conn, horde=horde, api_type=type, name=name, viewer=viewer)


@router.get("/workers/name/{worker_name}", response_model=WorkerDetails)
async def get_worker_by_name(
    worker_name: str, horde: HordeDep, viewer: OptionalUser, conn: ReadConn
) -> WorkerDetails:
    return await details.get_worker_by_name(conn, horde=horde, name=worker_name, viewer=viewer)


@router.get("/workers/{worker_id}", response_model=WorkerDetails)
async def get_worker(worker_id: str, horde: HordeDep, viewer: OptionalUser, conn: ReadConn) -> WorkerDetails:
    return await details.get_worker(conn, horde=horde, raw_id=worker_id, viewer=viewer)


@router.put("/workers/{worker_id}", response_model=ModifyWorker)
async def put_worker(
    worker_id: str, body: ModifyWorkerInput, horde: HordeDep, user: CurrentUser, conn: Conn
) -> ModifyWorker:
    return await details.modify_worker(conn, horde=horde, actor=user, raw_id=worker_id, body=body)


@router.delete("/workers/{worker_id}", response_model=DeletedWorker)
async def delete_worker(worker_id: str, horde: HordeDep, user: CurrentUser, conn: Conn) -> DeletedWorker:
    return await details.delete_worker(conn, horde=horde, actor=user, raw_id=worker_id)
