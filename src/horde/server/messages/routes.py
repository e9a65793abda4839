"""`/workers/messages`, `/workers/messages/{id}` (SEMANTICS.md 1.4)."""

from __future__ import annotations

from fastapi import APIRouter

from horde.contract import ResponseModelMessage, SimpleResponse, WorkerMessageDetails
from horde.server.auth import Conn, CurrentUser, HordeDep, ReadConn
from horde.server.kit.routing import HordeRoute
from horde.server.messages import service

router = APIRouter(tags=["v2"], route_class=HordeRoute)


@router.get("/workers/messages", response_model=list[WorkerMessageDetails])
async def get_messages(
    horde: HordeDep, user: CurrentUser, conn: ReadConn, user_id: str | None = None,
    worker_id: str | None = None, validity: str = "active", page: int = 1,
) -> list[WorkerMessageDetails]:  # fmt: skip
    return await service.list_messages(
        conn, horde=horde, actor=user, user_id=user_id, worker_id=worker_id, validity=validity, page=page
    )


@router.post("/workers/messages", response_model=WorkerMessageDetails)
async def post_message(
    body: ResponseModelMessage, horde: HordeDep, user: CurrentUser, conn: Conn
) -> WorkerMessageDetails:
    return await service.create_message(conn, horde=horde, actor=user, body=body)


@router.get("/workers/messages/{message_id}", response_model=WorkerMessageDetails)
async def get_message(message_id: str, conn: ReadConn) -> WorkerMessageDetails:
    return await service.get_message(conn, raw_id=message_id)


@router.delete("/workers/messages/{message_id}", response_model=SimpleResponse)
async def delete_message(message_id: str, horde: HordeDep, user: CurrentUser, conn: Conn) -> SimpleResponse:
    return await service.delete_message(conn, horde=horde, actor=user, raw_id=message_id)
