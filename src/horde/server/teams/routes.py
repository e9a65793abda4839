"""`/teams`, `/teams/{id}` (SEMANTICS.md 1.6)."""

from __future__ import annotations

from fastapi import APIRouter

from horde.contract import CreateTeamInput, DeletedTeam, ModifyTeam, ModifyTeamInput, TeamDetails
from horde.server.auth import Conn, CurrentUser, HordeDep, OptionalUser, ReadConn
from horde.server.kit.routing import HordeRoute
from horde.server.teams import service

router = APIRouter(tags=["v2"], route_class=HordeRoute)


@router.get("/teams", response_model=list[TeamDetails])
async def get_teams(horde: HordeDep, conn: ReadConn) -> list[TeamDetails]:
    return await service.list_teams(conn, horde=horde)


@router.post("/teams", response_model=ModifyTeam)
async def post_team(body: CreateTeamInput, horde: HordeDep, user: CurrentUser, conn: Conn) -> ModifyTeam:
    return await service.create_team(conn, horde=horde, actor=user, body=body)


@router.get("/teams/{team_id}", response_model=TeamDetails)
async def get_team(team_id: str, horde: HordeDep, viewer: OptionalUser, conn: ReadConn) -> TeamDetails:
    return await service.get_team(conn, horde=horde, raw_id=team_id)


@router.patch("/teams/{team_id}", response_model=ModifyTeam)
async def patch_team(
    team_id: str, body: ModifyTeamInput, horde: HordeDep, user: CurrentUser, conn: Conn
) -> ModifyTeam:
    return await service.modify_team(conn, horde=horde, actor=user, raw_id=team_id, body=body)


@router.delete("/teams/{team_id}", response_model=DeletedTeam)
async def delete_team(team_id: str, horde: HordeDep, user: CurrentUser, conn: Conn) -> DeletedTeam:
    return await service.delete_team(conn, horde=horde, actor=user, raw_id=team_id)
