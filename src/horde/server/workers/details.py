"""Workers as the API shows them, and the owner's and moderators' changes (SEMANTICS.md 1.4).

Invariants: a worker name is unique case-insensitively across kinds; a worker is deleted only while it
holds no job in `processing` (checked in the DELETE itself); after a change of maintenance, pause or
name this node's worker cache forgets the worker, so its next pop reads the new record.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import DeletedWorker, ModifyWorker, ModifyWorkerInput, WorkerDetails, limits
from horde.contract.rc import RC
from horde.server import access
from horde.server.config import Settings
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.jobs.kinds import API_TYPES, KINDS
from horde.server.jobs.models import Job, JobState
from horde.server.kit.orm import table, utc
from horde.server.kit.profanity import refuse_profane
from horde.server.state import Horde
from horde.server.status.service import node_answers
from horde.server.teams import service as teams_service
from horde.server.teams.models import Team
from horde.server.users.models import User
from horde.server.users.principal import Principal
from horde.server.workers.models import Worker
from horde.server.workers.service import FORBIDDEN_NAME_PARTS

workers = table(Worker)
users = table(User)
jobs = table(Job)
teams = table(Team)

LIST_TTL = 2.0  # seconds a node keeps a computed worker list (the reference rebuilds it every 30 s)
NO_TEAM = "None"  # what the reference answers for a worker without a team

_OWNER_COLUMNS = (
    users.c.username.label("owner_username"),
    users.c.trusted.label("owner_trusted"),
    users.c.moderator.label("owner_moderator"),
    users.c.flagged.label("owner_flagged"),
    users.c.public_workers.label("owner_public_workers"),
    users.c.contact.label("owner_contact"),
)


def worker_details(row: Mapping[str, Any], *, now: float, window: float, privileged: bool) -> WorkerDetails:
    """One worker (a row of `_select()`) as WorkerDetails; `privileged` is the moderators' view."""
    worker = Worker(**{c.name: row[c.name] for c in workers.columns})
    kind = KINDS[worker.kind]
    body: dict[str, Any] = {
        "type": kind.api_type,
        "name": worker.name,
        "id": str(worker.id),
        "online": worker.last_check_in.timestamp() >= now - window,
        "requests_fulfilled": worker.fulfilments,
        "kudos_rewards": (worker.kudos_generated + worker.kudos_uptime) / 100,
        "kudos_details": {"generated": worker.kudos_generated / 100, "uptime": worker.kudos_uptime // 100},
        "performance": kind.performance(worker.speed) if worker.fulfilments else "No requests fulfilled yet",
        "threads": worker.threads,
        "uptime": worker.uptime,
        "maintenance_mode": worker.maintenance,
        "info": worker.info,
        "nsfw": worker.nsfw,
        "trusted": bool(row["owner_trusted"] or row["owner_moderator"]),
        "flagged": bool(row["owner_flagged"]),
        "uncompleted_jobs": worker.uncompleted_jobs,
        "bridge_agent": worker.bridge_agent or limits.DEFAULT_BRIDGE_AGENT,
        **kind.worker_fields(worker),
    }
    if worker.team_id is not None:
        body["team"] = {"id": str(worker.team_id), "name": row["team_name"]}
    if privileged or row["owner_public_workers"]:
        body["owner"] = f"{row['owner_username']}#{worker.user_id}"
    if privileged:
        body.update(paused=worker.paused, ipaddr=worker.ipaddr, contact=row["owner_contact"])
    return WorkerDetails.model_validate(body)


def _select() -> Select[Any]:
    return (
        select(workers, *_OWNER_COLUMNS, teams.c.name.label("team_name"))
        .join(users, users.c.id == workers.c.user_id)
        .outerjoin(teams, teams.c.id == workers.c.team_id)
    )


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise HordeError(RC.WorkerNotFound, f"Worker with ID '{raw}' not found") from None


async def _row(conn: AsyncConnection, raw_id: str) -> Mapping[str, Any]:
    row = (await conn.execute(_select().where(workers.c.id == _parse_id(raw_id)))).first()
    if row is None:
        raise HordeError(RC.WorkerNotFound, f"Worker with ID '{raw_id}' not found")
    mapping: Mapping[str, Any] = row._mapping
    return mapping


async def worker_ipaddr(conn: AsyncConnection, *, raw_id: str) -> str:
    """The address a worker last checked in from (404 WorkerNotFound)."""
    return str((await _row(conn, raw_id))["ipaddr"] or "")


def _is_moderator(user: Principal | None) -> bool:
    return user is not None and (user.moderator or user.admin)


async def list_workers(
    conn: AsyncConnection, *, horde: Horde, api_type: str, name: str, viewer: Principal | None
) -> list[WorkerDetails]:
    """Workers seen within the online window: by case-insensitive name if given, else by type."""
    if not name and api_type and api_type not in API_TYPES:
        raise HordeError(RC.BadRequest, f"type must be one of {', '.join(API_TYPES)} (or empty for all)")
    privileged = _is_moderator(viewer)

    async def compute() -> list[WorkerDetails]:
        now = horde.clock.now()
        window = horde.settings.worker_online_window
        stmt = _select().where(workers.c.last_check_in >= utc(now - window))
        if name:
            stmt = stmt.where(workers.c.name_lower == name.lower())
        elif api_type:
            stmt = stmt.where(workers.c.kind == API_TYPES[api_type])
        rows = (await conn.execute(stmt.order_by(workers.c.name_lower))).all()
        return [worker_details(r._mapping, now=now, window=window, privileged=privileged) for r in rows]

    if name:  # names are arbitrary input: not worth a cache entry each
        return await compute()
    return await node_answers(horde).get(("workers", api_type, privileged), LIST_TTL, compute)


async def get_worker(
    conn: AsyncConnection, *, horde: Horde, raw_id: str, viewer: Principal | None
) -> WorkerDetails:
    """Any worker by id, online or not; unknown and malformed ids are WorkerNotFound."""
    row = await _row(conn, raw_id)
    return worker_details(
        row,
        now=horde.clock.now(),
        window=horde.settings.worker_online_window,
        privileged=_is_moderator(viewer),
    )


async def get_worker_by_name(
    conn: AsyncConnection, *, horde: Horde, name: str, viewer: Principal | None
) -> WorkerDetails:
    """Any worker by its name (names are unique case-insensitively across kinds)."""
    row = (await conn.execute(_select().where(workers.c.name_lower == name.lower()))).first()
    if row is None:
        raise HordeError(RC.WorkerNotFound, f"Worker with name '{name}' not found")
    return worker_details(
        row._mapping,
        now=horde.clock.now(),
        window=horde.settings.worker_online_window,
        privileged=_is_moderator(viewer),
    )


def _maintenance_values(body: ModifyWorkerInput) -> dict[str, Any]:
    message = body.maintenance_msg if body.maintenance else None
    if message is not None and len(message) > limits.MAX_MAINTENANCE_MSG_CHARS:
        limit = limits.MAX_MAINTENANCE_MSG_CHARS
        raise HordeError(RC.BadRequest, f"maintenance_msg is limited to {limit} characters")
    return {"maintenance": body.maintenance, "maintenance_msg": message or None}


_FIELDS = ("maintenance", "paused", "info", "name", "team")


def _check_texts(settings: Settings, body: ModifyWorkerInput) -> None:
    refuse_profane(settings, body.name, rc=RC.ProfaneWorkerName, what="worker name")
    refuse_profane(settings, body.info, rc=RC.ProfaneWorkerInfo, what="worker info")


def _plan_changes(actor: Principal, worker: Mapping[str, Any], body: ModifyWorkerInput) -> dict[str, Any]:
    """The column values to write, once the access table let the actor set every field sent."""
    sent = [name for name in _FIELDS if getattr(body, name) is not None]
    access.admit(access.MODIFY_WORKER, actor, owner_id=worker["user_id"], fields=sent, name=worker["name"])
    values: dict[str, Any] = {}
    if body.maintenance is not None:
        values.update(_maintenance_values(body))
    if body.paused is not None:
        values["paused"] = body.paused
    if body.info is not None:
        values["info"] = body.info
    if body.name is not None:
        if any(part in body.name.lower() for part in FORBIDDEN_NAME_PARTS):
            raise HordeError(RC.ProfaneWorkerName, "This worker name is not allowed")
        values.update(name=body.name, name_lower=body.name.lower())
    return values


async def _check_name_free(conn: AsyncConnection, *, worker_id: uuid.UUID, name_lower: str) -> None:
    taken = await conn.scalar(
        select(workers.c.id).where(workers.c.name_lower == name_lower, workers.c.id != worker_id)
    )
    if taken is not None:
        raise HordeError(RC.WorkerNameAlreadyExists, "A worker with this name already exists")


def _reply(values: dict[str, Any], team_name: str | None) -> ModifyWorker:
    reply: dict[str, Any] = {
        key: values[key] for key in ("maintenance", "paused", "info", "name") if key in values
    }
    if "team_id" in values:
        reply["team"] = team_name or NO_TEAM
    return ModifyWorker.model_validate(reply)


def _forget(horde: Horde, *names: str) -> None:
    for name in names:
        horde.workers.forget(name)
    node_answers(horde).forget("workers")


async def modify_worker(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str, body: ModifyWorkerInput
) -> ModifyWorker:
    """Apply a PUT /workers/{id}; answers only the keys it changed (nothing is written on any error)."""
    worker = await _row(conn, raw_id)
    values = _plan_changes(actor, worker, body)
    _check_texts(horde.settings, body)
    team_name = None
    if body.team:  # joins the team (TeamNotFound when there is none); "" leaves it
        values["team_id"], team_name = await teams_service.team_name(conn, body.team)
    elif body.team is not None:
        values["team_id"] = None
    if not values:
        raise HordeError(RC.NoWorkerModSelected, f"No modification selected for worker '{worker['name']}'")
    if "name_lower" in values:
        await _check_name_free(conn, worker_id=worker["id"], name_lower=values["name_lower"])
    if values:
        try:
            await conn.execute(update(workers).where(workers.c.id == worker["id"]).values(**values))
        except IntegrityError:  # a concurrent rename took the name between the check and the write
            raise HordeError(RC.WorkerNameAlreadyExists, "A worker with this name already exists") from None
    after_commit(
        conn, lambda: _forget(horde, worker["name"], *([values["name"]] if "name" in values else []))
    )
    if "team_id" in values:
        after_commit(conn, lambda: node_answers(horde).forget("teams"))
    return _reply(values, team_name)


async def delete_worker(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str
) -> DeletedWorker:
    """Delete a worker (owner or moderator); 423 Locked while it holds jobs in progress."""
    worker = await _row(conn, raw_id)
    access.admit(access.DELETE_WORKER, actor, owner_id=worker["user_id"], name=worker["name"])
    holding = exists().where(jobs.c.worker_id == worker["id"], jobs.c.state == JobState.PROCESSING)
    deleted = await conn.execute(delete(workers).where(workers.c.id == worker["id"], ~holding))
    if deleted.rowcount != 1:
        raise HordeError(RC.Locked, f"Worker '{worker['name']}' is still processing jobs; try again later")
    after_commit(conn, lambda: _forget(horde, worker["name"]))
    return DeletedWorker(deleted_id=str(worker["id"]), deleted_name=worker["name"])
