"""Users as the API shows them (three detail levels) and pseudonymous sign-up (changes: changes.py).

Invariants: level 0 is public, level 1 is the user themself, level 2 a moderator (SEMANTICS.md 1.5);
a wiped user is not found; deleted users are hidden from the pages.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import UserDetails, limits
from horde.contract.rc import RC
from horde.server.config import Settings
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.jobs.models import Job, JobState, Request, RequestState
from horde.server.kit.orm import table
from horde.server.kit.profanity import refuse_profane
from horde.server.kudos import monthly
from horde.server.kudos import service as kudos
from horde.server.operations.guard import read_modes
from horde.server.sharedkeys.service import find_shared_key
from horde.server.state import Horde
from horde.server.status.service import node_answers
from horde.server.styles.lookup import styles_of
from horde.server.users import records, service
from horde.server.users.changes import load_target
from horde.server.users.models import User
from horde.server.users.principal import Principal
from horde.server.users.service import NewUser
from horde.server.workers.models import Worker

users = table(User)
workers = table(Worker)
jobs = table(Job)
requests = table(Request)

PUBLIC, SELF, MODERATOR = 0, 1, 2
PAGE_TTL = 60.0  # seconds a node keeps a users page (the reference: 300 s)

# posting reason -> the kudos_details key it adds to (a worker's earnings and a requester's spending
# are both "accumulated" on the reference)
KUDOS_DETAIL_OF_REASON = {
    "generation": "accumulated", "uptime": "accumulated", "admin": "admin", "gifted": "gifted",
    "received": "received", "donated": "donated", "recurring": "recurring", "awarded": "awarded",
    "styled": "styled", "promotion": "accumulated",
}  # fmt: skip
THINGS_FIELD = {"image": "megapixelsteps", "text": "tokens"}  # what an api type's `things` are


async def _worker_ids(conn: AsyncConnection, user_id: int) -> list[str]:
    rows = await conn.execute(
        select(workers.c.id).where(workers.c.user_id == user_id).order_by(workers.c.created_at)
    )
    return [str(worker_id) for (worker_id,) in rows]


async def _records(conn: AsyncConnection, user_id: int) -> dict[str, Any]:
    """The user's folded records (ADR 0022): they lag finished jobs by a fold, like balances."""
    usage: dict[str, float] = {}
    contribution: dict[str, float] = {}
    fulfillment: dict[str, int] = {}
    request: dict[str, int] = {}
    for api_type, (used, requested, contributed, fulfilled) in (
        await records.records_of(conn, user_id)
    ).items():
        request[api_type] = requested
        fulfillment[api_type] = fulfilled
        if key := THINGS_FIELD.get(api_type):
            usage[key] = int(used) if key == "tokens" else round(used, 2)
            contribution[key] = int(contributed) if key == "tokens" else round(contributed, 2)
    return {"usage": usage, "contribution": contribution, "fulfillment": fulfillment, "request": request}


async def _active_generations(conn: AsyncConnection, user_id: int) -> dict[str, list[str]]:
    pending = exists().where(
        jobs.c.request_id == requests.c.id, jobs.c.state.in_([JobState.QUEUED, JobState.PROCESSING])
    )
    rows = await conn.execute(
        select(requests.c.id, requests.c.kind)
        .where(requests.c.user_id == user_id, requests.c.state == RequestState.ACTIVE, pending)
        .order_by(requests.c.created_at)
    )
    active: dict[str, list[str]] = {}
    for request_id, kind in rows:
        active.setdefault(kind, []).append(str(request_id))
    return active


def _kudos_details(totals: dict[str, int]) -> dict[str, float]:
    details: dict[str, float] = {}
    for reason, hundredths in totals.items():
        if key := KUDOS_DETAIL_OF_REASON.get(reason):
            details[key] = round(details.get(key, 0) + hundredths / 100, 2)
    return details


async def user_details(conn: AsyncConnection, horde: Horde, user: User, *, level: int) -> UserDetails:
    """A user at detail level 0 (public), 1 (self) or 2 (moderator)."""
    worker_ids = await _worker_ids(conn, user.id)
    body: dict[str, Any] = {
        "username": user.alias, "id": user.id, "kudos": await kudos.balance_of(conn, user.id) / 100,
        "kudos_details": _kudos_details(await kudos.totals_by_reason(conn, user.id)),
        "records": await _records(conn, user.id),
        "concurrency": user.concurrency, "worker_invited": user.worker_invited, "moderator": user.moderator,
        "trusted": user.trusted or user.moderator, "flagged": user.flagged, "pseudonymous": user.pseudonymous,
        "worker_count": len(worker_ids), "service": user.service, "deleted": user.deleted,
        "education": user.education, "customizer": user.customizer,
        "account_age": max(int(horde.clock.now() - user.created_at.timestamp()), 0),
        "styles": await styles_of(conn, user.id, private=level >= SELF),
    }  # fmt: skip
    if user.public_workers or level >= SELF:
        body["worker_ids"] = worker_ids
    if level >= SELF:
        body.update(sharedkey_ids=[], contact=user.contact, vpn=user.vpn, special=user.special)
        if not user.is_anon:  # the anonymous user's requests are everybody's: never listed
            body["active_generations"] = await _active_generations(conn, user.id)
    if level >= MODERATOR:
        amount, last = await monthly.monthly_kudos_of(conn, user.id)
        grant: dict[str, Any] = {"amount": amount} | ({"last_received": last} if last else {})
        escrow = await kudos.escrow_of(conn, user.id) / 100
        suspicion = await service.suspicion_of(conn, user.id)
        body.update(
            evaluating_kudos=escrow,
            monthly_kudos=grant,
            suspicious=suspicion,
            admin_comment=user.admin_comment,
        )
    return UserDetails.model_validate(body)


async def find_user(conn: AsyncConnection, *, horde: Horde, api_key: str | None) -> UserDetails:
    """The key's own user at level 1; a shared key's owner at level 0, named with the key's name; an
    unknown key is UserNotFound, as on the reference."""
    sharedkey = await find_shared_key(conn, pepper=horde.users.pepper, raw_key=api_key) if api_key else None
    if sharedkey is not None:
        owner = await service.get_user(conn, sharedkey.user_id)
        assert owner is not None  # a user's keys go with them (foreign key)
        found = await user_details(conn, horde, owner, level=PUBLIC)
        return found.model_copy(update={"username": f"{owner.alias} (Shared Key: {sharedkey.name})"})
    principal = await horde.users.by_key(conn, api_key) if api_key else None
    user = await service.get_user(conn, principal.id) if principal else None
    if user is None:
        raise HordeError(RC.UserNotFound, "No user matching sent API Key. Have you remembered to register?")
    if user.deleted:
        raise HordeError(RC.DeletedUser, "This user has been deleted")
    return await user_details(conn, horde, user, level=SELF)


async def get_user_details(
    conn: AsyncConnection, *, horde: Horde, raw_id: str, viewer: Principal | None
) -> UserDetails:
    """A user by numeric id: level 2 for moderators, 1 for the user themself, else 0."""
    user = await load_target(conn, raw_id)
    level = PUBLIC
    if viewer is not None and (viewer.moderator or viewer.admin):
        level = MODERATOR
    elif viewer is not None and viewer.id == user.id:
        level = SELF
    return await user_details(conn, horde, user, level=level)


async def list_user_details(
    conn: AsyncConnection, *, horde: Horde, page: int, sort: str
) -> list[UserDetails]:
    """One page of 25 users (public level), by kudos or by age; kept a minute per node."""
    order = "age" if sort == "age" else "kudos"

    async def compute() -> list[UserDetails]:
        page_users = await service.list_users(conn, page=page, sort=order, page_size=limits.USERS_PAGE_SIZE)
        return [await user_details(conn, horde, u, level=PUBLIC) for u in page_users]

    return await node_answers(horde).get(("users", page, order), PAGE_TTL, compute)


def check_username(username: str, *, settings: Settings) -> str:
    """A username as a new user may choose it: stripped, 1 to 30 characters, not profane."""
    username = username.strip()
    if not username:
        raise HordeError(RC.BadRequest, "A username is required")
    if not username.isprintable():
        raise HordeError(RC.BadRequest, "A username cannot hold control characters")
    if len(username) > limits.MAX_USERNAME_CHARS:
        raise HordeError(
            RC.TooLongUserName, f"Usernames are limited to {limits.MAX_USERNAME_CHARS} characters"
        )
    refuse_profane(settings, username, rc=RC.ProfaneUserName, what="username")
    return username


async def register_pseudonymous(conn: AsyncConnection, *, horde: Horde, username: str) -> NewUser:
    """A new pseudonymous user (oauth_id `pseudo:<uuid>`) with a fresh key, shown once; none in raid mode."""
    if (await read_modes(conn)).raid:
        raise HordeError(RC.Forbidden, "Pseudonymous registration is closed for now. Please try again later.")
    name = check_username(username, settings=horde.settings)
    new = await service.create_user(
        conn, username=name, oauth_id=f"pseudo:{uuid.uuid4()}", pepper=horde.pepper,
        now=horde.clock.now(), concurrency=horde.settings.default_concurrency,
    )  # fmt: skip
    after_commit(conn, lambda: node_answers(horde).forget("users"))
    return new
