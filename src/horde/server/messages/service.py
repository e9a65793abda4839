"""Messages to workers (SEMANTICS.md 1.4): a user writes to their own workers, a moderator to any
worker or to all of them (a broadcast, `worker_id` null).

Invariants: a message is carried by every pop of its worker (of every worker for a broadcast) until
it expires, read from this node's board (`messages/board.py`), never by a query per pop; a message
expired for `RETENTION` seconds is deleted by the prune.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import ResponseModelMessage, SimpleResponse, WorkerMessageDetails, limits
from horde.contract.rc import RC
from horde.server import access
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.kit.orm import table, utc
from horde.server.messages.models import WorkerMessage
from horde.server.state import Horde
from horde.server.users.principal import Principal
from horde.server.workers.models import Worker

messages = table(WorkerMessage)
workers = table(Worker)

VALIDITY = ("active", "expired", "all")
RETENTION = 30 * 86400.0  # seconds an expired message stays listable before the prune deletes it
HOUR = 3600.0


def _details(row: Mapping[str, Any]) -> WorkerMessageDetails:
    return WorkerMessageDetails(
        id=str(row["id"]), worker_id=str(row["worker_id"]) if row["worker_id"] else None,
        message=row["message"], origin=row["origin"], expiry=row["expiry"], expires=row["expires_at"],
    )  # fmt: skip


def _parse_uuid(raw: str, rc: RC, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise HordeError(rc, f"{what} with ID '{raw}' not found") from None


def _is_moderator(actor: Principal) -> bool:
    return actor.moderator or actor.admin


def _filters(
    actor: Principal, *, user_id: str | None, worker_id: str | None, validity: str, now: float
) -> list[ColumnElement[bool]]:
    if validity not in VALIDITY:
        raise HordeError(RC.BadRequest, f"validity must be one of {', '.join(VALIDITY)}")
    where: list[ColumnElement[bool]] = []
    if user_id:
        if not (user_id.isascii() and user_id.isdigit()) or len(user_id) > 9:
            raise HordeError(RC.BadRequest, "user_id must be a numerical user id")
        access.admit(access.LIST_MESSAGES, actor, owner_id=int(user_id), fields=["user_id"])
        where.append(messages.c.user_id == int(user_id))
    elif not _is_moderator(actor):  # a user sees the messages to their workers and the broadcasts
        where.append(or_(messages.c.user_id == actor.id, messages.c.worker_id.is_(None)))
    if worker_id:
        try:
            where.append(messages.c.worker_id == uuid.UUID(worker_id))
        except ValueError:
            raise HordeError(RC.BadRequest, "worker_id must be a worker's UUID") from None
    if validity == "active":
        where.append(messages.c.expires_at > utc(now))
    elif validity == "expired":
        where.append(messages.c.expires_at <= utc(now))
    return where


async def list_messages(
    conn: AsyncConnection,
    *,
    horde: Horde,
    actor: Principal,
    user_id: str | None,
    worker_id: str | None,
    validity: str,
    page: int,
) -> list[WorkerMessageDetails]:
    """A page of messages (newest first): a user's own (to their workers) and broadcasts; any for mods."""
    if page < 1:
        raise HordeError(RC.BadRequest, "page starts at 1")
    where = _filters(actor, user_id=user_id, worker_id=worker_id, validity=validity, now=horde.clock.now())
    per_page = limits.MESSAGES_PER_PAGE
    rows = await conn.execute(
        select(messages).where(*where).order_by(messages.c.created_at.desc(), messages.c.id)
        .limit(per_page).offset((page - 1) * per_page)
    )  # fmt: skip
    return [_details(dict(row._mapping)) for row in rows]


async def create_message(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, body: ResponseModelMessage
) -> WorkerMessageDetails:
    """A message to the caller's own worker, or (moderators) to any worker or every worker."""
    owner_id: int | None = None
    worker: uuid.UUID | None = None
    if body.worker_id is not None:
        worker = _parse_uuid(body.worker_id, RC.WorkerNotFound, "Worker")
        owner_id = await conn.scalar(select(workers.c.user_id).where(workers.c.id == worker))
        if owner_id is None:
            raise HordeError(RC.WorkerNotFound, f"Worker with ID '{body.worker_id}' not found")
    access.admit(access.CREATE_MESSAGE, actor, owner_id=owner_id)
    now = horde.clock.now()
    # a moderator may sign as the horde; anyone else's messages carry their own alias
    origin = body.origin if body.origin and _is_moderator(actor) else actor.alias
    values = {
        "id": uuid.uuid4(), "author_id": actor.id, "user_id": owner_id, "worker_id": worker,
        "message": body.message, "origin": origin, "expiry": body.expiry, "created_at": utc(now),
        "expires_at": utc(now + body.expiry * HOUR),
    }  # fmt: skip
    await conn.execute(insert(messages).values(**values))
    after_commit(conn, horde.messages.forget)
    return _details(values)


async def _message(conn: AsyncConnection, raw_id: str) -> Mapping[str, Any]:
    message_id = _parse_uuid(raw_id, RC.WorkermessageNotFound, "Worker message")
    row = (await conn.execute(select(messages).where(messages.c.id == message_id))).first()
    if row is None:
        raise HordeError(RC.WorkermessageNotFound, f"Worker message with ID '{raw_id}' not found")
    mapping: Mapping[str, Any] = dict(row._mapping)
    return mapping


async def get_message(conn: AsyncConnection, *, raw_id: str) -> WorkerMessageDetails:
    """One message by id, expired or not (WorkermessageNotFound when there is none)."""
    return _details(await _message(conn, raw_id))


async def delete_message(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str
) -> SimpleResponse:
    """Delete a message (its author or a moderator); pops stop carrying it."""
    message = await _message(conn, raw_id)
    access.admit(access.DELETE_MESSAGE, actor, owner_id=message["author_id"])
    await conn.execute(delete(messages).where(messages.c.id == message["id"]))
    after_commit(conn, horde.messages.forget)
    return SimpleResponse(message="OK")


async def prune_messages(conn: AsyncConnection, *, now: float) -> int:
    """Delete messages expired more than `RETENTION` seconds ago."""
    result = await conn.execute(delete(messages).where(messages.c.expires_at < utc(now - RETENTION)))
    return int(result.rowcount or 0)
