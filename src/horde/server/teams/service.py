"""Teams as the API shows them, and their creators' and moderators' changes (SEMANTICS.md 1.6).

Invariants: a team name is unique case-insensitively; only trusted users and moderators create teams;
a team's figures are written only by the fold of its events (`teams/writes.py`, ADR 0016), never by a
request; deleting a team detaches its workers (the foreign key sets their team to null).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import (
    ActiveModelLite,
    CreateTeamInput,
    DeletedTeam,
    ModifyTeam,
    ModifyTeamInput,
    TeamDetails,
    WorkerDetailsLite,
)
from horde.contract.rc import RC
from horde.server import access
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.jobs.kinds import KINDS
from horde.server.kit.orm import table, utc
from horde.server.kit.profanity import refuse_profane
from horde.server.state import Horde
from horde.server.status.service import node_answers
from horde.server.teams.models import Team
from horde.server.users.models import User
from horde.server.users.principal import Principal
from horde.server.workers.models import Worker

teams = table(Team)
workers = table(Worker)
users = table(User)

LIST_TTL = 10.0  # seconds a node keeps the team list (the reference caches it 10 s)
_SELECT = select(teams, users.c.username.label("creator_name")).join(users, users.c.id == teams.c.user_id)


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise HordeError(RC.TeamNotFound, f"Team with ID '{raw}' not found") from None


async def _team(conn: AsyncConnection, raw_id: str) -> Mapping[str, Any]:
    row = (await conn.execute(_SELECT.where(teams.c.id == _parse_id(raw_id)))).first()
    if row is None:
        raise HordeError(RC.TeamNotFound, f"Team with ID '{raw_id}' not found")
    mapping: Mapping[str, Any] = dict(row._mapping)
    return mapping


async def _details(
    conn: AsyncConnection, horde: Horde, rows: Sequence[Mapping[str, Any]]
) -> list[TeamDetails]:
    """The teams of `rows` (from `_SELECT`) with their workers, in one more query."""
    ids = [row["id"] for row in rows]
    members = (
        await conn.execute(
            select(workers.c.id, workers.c.team_id, workers.c.kind, workers.c.name, workers.c.last_check_in,
                   workers.c.models)
            .where(workers.c.team_id.in_(ids))
            .order_by(workers.c.name_lower)
        )
    ).all() if ids else []  # fmt: skip
    online_since = horde.clock.now() - horde.settings.worker_online_window
    lites: dict[uuid.UUID, list[WorkerDetailsLite]] = {i: [] for i in ids}
    models: dict[uuid.UUID, Counter[str]] = {i: Counter() for i in ids}
    for member in members:
        online = member.last_check_in.timestamp() >= online_since
        lites[member.team_id].append(
            WorkerDetailsLite(
                type=KINDS[member.kind].api_type, name=member.name, id=str(member.id), online=online
            )
        )
        if online:
            models[member.team_id].update(set(member.models or ()))
    return [_one(row, lites[row["id"]], models[row["id"]]) for row in rows]


def _one(row: Mapping[str, Any], members: list[WorkerDetailsLite], models: Counter[str]) -> TeamDetails:
    return TeamDetails(
        id=str(row["id"]), name=row["name"], info=row["info"],
        creator=f"{row['creator_name']}#{row['user_id']}",
        requests_fulfilled=row["fulfilments"], kudos=row["kudos"] / 100, uptime=row["uptime"],
        contributions=round(row["contributions"], 2), worker_count=len(members), workers=members,
        models=[ActiveModelLite(name=n, count=c) for n, c in sorted(models.items())],
    )  # fmt: skip


async def list_teams(conn: AsyncConnection, *, horde: Horde) -> list[TeamDetails]:
    """Every team, by name (kept `LIST_TTL` seconds on this node)."""

    async def compute() -> list[TeamDetails]:
        rows = (await conn.execute(_SELECT.order_by(teams.c.name_lower))).all()
        return await _details(conn, horde, [dict(row._mapping) for row in rows])

    return await node_answers(horde).get(("teams",), LIST_TTL, compute)


async def get_team(conn: AsyncConnection, *, horde: Horde, raw_id: str) -> TeamDetails:
    """One team by id; unknown and malformed ids are TeamNotFound."""
    return (await _details(conn, horde, [await _team(conn, raw_id)]))[0]


def _name_taken() -> HordeError:
    return HordeError(RC.TeamNameAlreadyExists, "A team with this name already exists")


async def _check_name_free(conn: AsyncConnection, name: str, *, team_id: uuid.UUID | None = None) -> None:
    found = await conn.scalar(select(teams.c.id).where(teams.c.name_lower == name.lower()))
    if found is not None and found != team_id:
        raise _name_taken()


def _check_texts(horde: Horde, *, name: str | None, info: str | None) -> None:
    refuse_profane(horde.settings, name, rc=RC.ProfaneTeamName, what="team name")
    refuse_profane(horde.settings, info, rc=RC.ProfaneTeamInfo, what="team info")


def _forget(conn: AsyncConnection, horde: Horde) -> None:
    answers = node_answers(horde)
    after_commit(conn, lambda: answers.forget("teams"))
    after_commit(conn, lambda: answers.forget("workers"))


async def create_team(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, body: CreateTeamInput
) -> ModifyTeam:
    """A new team of the (trusted) caller's; the name must be free in any case."""
    _check_texts(horde, name=body.name, info=body.info)
    await _check_name_free(conn, body.name)
    team_id = uuid.uuid4()
    try:
        await conn.execute(
            insert(teams).values(
                id=team_id, name=body.name, name_lower=body.name.lower(), info=body.info, user_id=actor.id,
                created_at=utc(horde.clock.now()), contributions=0.0, fulfilments=0, kudos=0, uptime=0,
            )
        )  # fmt: skip
    except IntegrityError:  # a concurrent creation took the name between the check and the insert
        raise _name_taken() from None
    _forget(conn, horde)
    return ModifyTeam(id=str(team_id), name=body.name, info=body.info)


async def modify_team(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str, body: ModifyTeamInput
) -> ModifyTeam:
    """Rename a team or change its info (its creator or a moderator); answers the team as it now is."""
    team = await _team(conn, raw_id)
    access.admit(access.CHANGE_TEAM, actor, owner_id=team["user_id"], name=team["name"])
    _check_texts(horde, name=body.name, info=body.info)
    values: dict[str, Any] = {}
    if body.name is not None:
        await _check_name_free(conn, body.name, team_id=team["id"])
        values.update(name=body.name, name_lower=body.name.lower())
    if body.info is not None:
        values["info"] = body.info
    if not values:
        raise HordeError(RC.NoTeamModSelected, f"No modification selected for team '{team['name']}'")
    try:
        await conn.execute(update(teams).where(teams.c.id == team["id"]).values(**values))
    except IntegrityError:
        raise _name_taken() from None
    _forget(conn, horde)
    return ModifyTeam(
        id=str(team["id"]), name=values.get("name", team["name"]), info=values.get("info", team["info"])
    )


async def delete_team(conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str) -> DeletedTeam:
    """Delete a team (its creator or a moderator); its workers stay, without a team."""
    team = await _team(conn, raw_id)
    access.admit(access.CHANGE_TEAM, actor, owner_id=team["user_id"], name=team["name"])
    await conn.execute(delete(teams).where(teams.c.id == team["id"]))
    _forget(conn, horde)
    return DeletedTeam(deleted_id=str(team["id"]), deleted_name=team["name"])


async def team_name(conn: AsyncConnection, raw_id: str) -> tuple[uuid.UUID, str]:
    """A team's id and name, for a worker joining it (TeamNotFound when there is none)."""
    team = await _team(conn, raw_id)
    return team["id"], team["name"]
