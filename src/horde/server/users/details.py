"""Users as the API shows them (three detail levels), their changes, and pseudonymous sign-up.

Invariants: level 0 is public, level 1 is the user themself, level 2 a moderator (SEMANTICS.md 1.5);
a change answers only the keys it wrote, and fields this horde does not build are refused with 400,
never ignored; after any change every node-local key cache entry of this node is dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import ModifyUser, ModifyUserInput, UserDetails, limits
from horde.contract.rc import RC
from horde.server import access
from horde.server.config import Settings
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.models import Job, JobState, Request, RequestState
from horde.server.kit.orm import table
from horde.server.kit.profanity import refuse_profane
from horde.server.kudos import monthly, transfers
from horde.server.kudos import service as kudos
from horde.server.operations.guard import read_modes
from horde.server.state import Horde
from horde.server.status.service import node_answers
from horde.server.users import service
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
CONTRIBUTION_FIELD = {"image": "megapixelsteps", "text": "tokens"}  # what a kind's `things` are

UNBUILT_FIELDS = (
    "usage_multiplier", "special", "reset_suspicion", "undelete", "filtered",
)  # fmt: skip
ROLE_FIELDS = ("moderator", "concurrency", "worker_invited", "trusted", "flagged", "customizer", "service",
               "education", "vpn")  # fmt: skip
SELF_FIELDS = ("public_workers", "username", "contact")
KUDOS_FIELDS = ("kudos", "monthly_kudos")  # movements through the kudos domain, not user columns


async def _worker_facts(conn: AsyncConnection, user_id: int) -> tuple[list[str], dict[str, Any]]:
    """The user's worker ids and their records (contribution and fulfillment) from their workers."""
    rows = (
        await conn.execute(
            select(workers.c.id, workers.c.kind, workers.c.things, workers.c.fulfilments)
            .where(workers.c.user_id == user_id)
            .order_by(workers.c.created_at)
        )
    ).all()
    contribution: dict[str, float] = {}
    fulfillment: dict[str, int] = {}
    for row in rows:
        api_type = KINDS[row.kind].api_type
        fulfillment[api_type] = fulfillment.get(api_type, 0) + row.fulfilments
        if key := CONTRIBUTION_FIELD.get(row.kind):
            contribution[key] = contribution.get(key, 0) + row.things
    if "tokens" in contribution:
        contribution["tokens"] = int(contribution["tokens"])
    return [str(r.id) for r in rows], {"contribution": contribution, "fulfillment": fulfillment}


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
    worker_ids, records = await _worker_facts(conn, user.id)
    body: dict[str, Any] = {
        "username": user.alias, "id": user.id, "kudos": await kudos.balance_of(conn, user.id) / 100,
        "kudos_details": _kudos_details(await kudos.totals_by_reason(conn, user.id)), "records": records,
        "concurrency": user.concurrency, "worker_invited": user.worker_invited, "moderator": user.moderator,
        "trusted": user.trusted or user.moderator, "flagged": user.flagged, "pseudonymous": user.pseudonymous,
        "worker_count": len(worker_ids), "service": user.service, "deleted": user.deleted,
        "education": user.education, "customizer": user.customizer,
        "account_age": max(int(horde.clock.now() - user.created_at.timestamp()), 0),
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
        body.update(
            evaluating_kudos=escrow, monthly_kudos=grant, suspicious=0, admin_comment=user.admin_comment
        )
    return UserDetails.model_validate(body)


async def find_user(conn: AsyncConnection, *, horde: Horde, api_key: str | None) -> UserDetails:
    """The key's own user at level 1; an unknown key is UserNotFound, as on the reference."""
    principal = await horde.users.by_key(conn, api_key) if api_key else None
    user = await service.get_user(conn, principal.id) if principal else None
    if user is None:
        raise HordeError(RC.UserNotFound, "No user matching sent API Key. Have you remembered to register?")
    return await user_details(conn, horde, user, level=SELF)


def _parse_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:  # also keeps it in INTEGER range
        raise HordeError(RC.UserNotFound, f"User with ID '{raw}' not found")
    return int(raw)


async def get_user_details(
    conn: AsyncConnection, *, horde: Horde, raw_id: str, viewer: Principal | None
) -> UserDetails:
    """A user by numeric id: level 2 for moderators, 1 for the user themself, else 0."""
    user_id = _parse_id(raw_id)
    user = await service.get_user(conn, user_id)
    if user is None:
        raise HordeError(RC.UserNotFound, f"User with ID '{raw_id}' not found")
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


def _present(body: ModifyUserInput, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(body, name) for name in names if getattr(body, name) is not None}


def _check_rights(actor: Principal, target: User, body: ModifyUserInput) -> dict[str, Any]:
    """The column values of this change, after refusing unbuilt fields and asking the access table
    whether the actor may set each field."""
    unbuilt = sorted(_present(body, UNBUILT_FIELDS)) + (
        ["generate_proxy_passkey"] if body.generate_proxy_passkey else []
    )
    if unbuilt:
        raise HordeError(RC.BadRequest, f"This horde does not support changing {', '.join(unbuilt)} yet")
    values = _present(body, (*ROLE_FIELDS, *SELF_FIELDS, "admin_comment"))
    access.admit(access.MODIFY_USER, actor)
    if target.is_anon:
        raise HordeError(RC.AnonForbiddenUserMod, "The anonymous user cannot be modified")
    access.admit(
        access.MODIFY_USER, actor, owner_id=target.id, fields=[*values, *_present(body, KUDOS_FIELDS)]
    )
    if len(values.get("username", "")) > limits.MAX_USERNAME_CHARS:
        raise HordeError(
            RC.TooLongUserName, f"Usernames are limited to {limits.MAX_USERNAME_CHARS} characters"
        )
    return values


# the user's free texts and the rc each refuses with when profane (SEMANTICS.md 2)
PROFANE_USER_TEXTS = {
    "username": RC.ProfaneUserName, "contact": RC.ProfaneUserContact, "admin_comment": RC.ProfaneAdminComment
}  # fmt: skip


def check_user_texts(settings: Settings, values: Mapping[str, Any]) -> None:
    """Refuse (400 Profane*) a username, contact or admin comment with profanity."""
    for field, rc in PROFANE_USER_TEXTS.items():
        text = values.get(field)
        refuse_profane(settings, text if isinstance(text, str) else None, rc=rc, what=field)


def _forget_users(horde: Horde) -> None:
    horde.users.forget_all()
    node_answers(horde).forget("users")
    node_answers(horde).forget("workers")  # they show the owner's roles and public_workers


async def modify_user(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str, body: ModifyUserInput
) -> ModifyUser:
    """Apply a PUT /users/{id}; answers the keys it changed, named as the reference names them."""
    user_id = _parse_id(raw_id)
    target = await service.get_user(conn, user_id)
    if target is None:
        raise HordeError(RC.UserNotFound, f"User with ID '{raw_id}' not found")
    values = _check_rights(actor, target, body)
    check_user_texts(horde.settings, values)
    movements = _present(body, KUDOS_FIELDS)
    if not values and not movements:
        raise HordeError(RC.NoUserModSelected, "No modification selected")
    reply: dict[str, Any] = dict(values)
    if values:
        await conn.execute(update(users).where(users.c.id == user_id).values(**values))
    reply.update(await _move_kudos(conn, horde, user_id, movements))
    after_commit(conn, lambda: _forget_users(horde))
    if "username" in reply:
        reply["username"] = f"{values['username']}#{user_id}"
    return ModifyUser.model_validate(reply)


async def _move_kudos(
    conn: AsyncConnection, horde: Horde, user_id: int, movements: dict[str, Any]
) -> dict[str, Any]:
    """An admin's kudos delta and monthly amount, as postings of the kudos domain (SEMANTICS.md 4.6)."""
    reply: dict[str, Any] = {}
    now = horde.clock.now()
    if "monthly_kudos" in movements:
        amount = movements["monthly_kudos"]
        reply["monthly_kudos"] = await monthly.set_monthly_kudos(
            conn, user_id=user_id, amount=amount, now=now
        )
    if "kudos" in movements:
        reply["new_kudos"] = await transfers.adjust_kudos(
            conn, user_id=user_id, delta=movements["kudos"], now=now
        )
    return reply


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
