"""Changing and deleting users: `PUT /users/{id}` (every field, SEMANTICS.md 1.5) and `DELETE /users/{id}`.

Invariants: the access table decides who may set which field (ADR 0009) and nothing here writes before
every check has passed; a change answers only the keys it wrote, named as the reference names them;
kudos move only as postings of the kudos domain; a wipe keeps the user's postings under its id as
anonymous history (ADR 0022); after any change this node's key cache and users pages are dropped.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import ModifyUser, ModifyUserInput, SimpleResponse, limits
from horde.contract.rc import RC
from horde.server import access
from horde.server.config import Settings
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.kit.orm import table, utc
from horde.server.kit.profanity import refuse_profane
from horde.server.kudos import monthly, transfers
from horde.server.state import Horde
from horde.server.status.service import node_answers
from horde.server.users import service
from horde.server.users.keys import hash_api_key, new_api_key
from horde.server.users.models import WIPED_PREFIX, User, UserSuspicion
from horde.server.users.principal import Principal

users = table(User)
suspicions = table(UserSuspicion)

WIPE_AFTER = timedelta(days=30)  # inactivity a deleted user needs before a second DELETE wipes it
PROXY_PASSKEY_BYTES = 12  # 16 URL-safe characters, the reference's length

UNBUILT_FIELDS = ("filtered",)  # refused with 400, never silently ignored
COLUMN_FIELDS = (
    "moderator", "concurrency", "worker_invited", "trusted", "flagged", "customizer", "service", "education",
    "vpn", "special", "usage_multiplier", "public_workers", "username", "contact", "admin_comment",
)  # fmt: skip
KUDOS_FIELDS = ("kudos", "monthly_kudos")  # movements through the kudos domain, not user columns
ACTION_FIELDS = ("reset_suspicion", "undelete", "generate_proxy_passkey")  # done when true


def parse_id(raw: str) -> int:
    """A user id as the URL holds it: the numeric part only, else UserNotFound (SEMANTICS.md 1.5)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:  # also keeps it in INTEGER range
        raise HordeError(RC.UserNotFound, f"User with ID '{raw}' not found")
    return int(raw)


async def load_target(conn: AsyncConnection, raw_id: str) -> User:
    """The user a change or deletion names; a wiped user is gone (UserNotFound)."""
    target = await service.get_user(conn, parse_id(raw_id))
    if target is None or target.wiped:
        raise HordeError(RC.UserNotFound, f"User with ID '{raw_id}' not found")
    return target


def _present(body: ModifyUserInput, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(body, name) for name in names if getattr(body, name) is not None}


def _check_rights(actor: Principal, target: User, body: ModifyUserInput) -> tuple[dict[str, Any], set[str]]:
    """The column values and the actions of this change, after refusing unbuilt fields and asking the
    access table whether the actor may set each field."""
    if unbuilt := sorted(_present(body, UNBUILT_FIELDS)):
        raise HordeError(RC.BadRequest, f"This horde does not support changing {', '.join(unbuilt)} yet")
    values = _present(body, COLUMN_FIELDS)
    actions = {name for name in ACTION_FIELDS if getattr(body, name)}
    access.admit(access.MODIFY_USER, actor)
    if target.is_anon:
        raise HordeError(RC.AnonForbiddenUserMod, "The anonymous user cannot be modified")
    fields = [*values, *actions, *_present(body, KUDOS_FIELDS)]
    if actor.deleted and (actor.id != target.id or set(fields) != {"undelete"}):
        raise HordeError(RC.DeletedUser, "This user has been deleted: it may only undelete itself")
    access.admit(access.MODIFY_USER, actor, owner_id=target.id, fields=fields)
    if len(values.get("username", "")) > limits.MAX_USERNAME_CHARS:
        raise HordeError(
            RC.TooLongUserName, f"Usernames are limited to {limits.MAX_USERNAME_CHARS} characters"
        )
    if "undelete" in actions and not target.deleted:
        raise HordeError(RC.UserNotDeleted, f"User {target.alias} is not deleted")
    if "generate_proxy_passkey" in actions and not values.get("service", target.service):
        raise HordeError(RC.NonServiceForbidden, "Only service accounts can have a proxy passkey")
    return values, actions


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
    target = await load_target(conn, raw_id)
    values, actions = _check_rights(actor, target, body)
    check_user_texts(horde.settings, values)
    movements = _present(body, KUDOS_FIELDS)
    if not values and not movements and not actions:
        raise HordeError(RC.NoUserModSelected, "No modification selected")
    reply: dict[str, Any] = dict(values)
    columns = dict(values)
    if "undelete" in actions:
        columns["deleted"] = False
        reply["undeleted"] = True
    if "generate_proxy_passkey" in actions:
        passkey = secrets.token_urlsafe(PROXY_PASSKEY_BYTES)
        columns["proxy_passkey_hash"] = hash_api_key(passkey, pepper=horde.pepper)
        reply["proxy_passkey"] = passkey  # shown once: only its hash is kept
    if columns:
        await conn.execute(update(users).where(users.c.id == target.id).values(**columns))
    if "reset_suspicion" in actions:
        await conn.execute(delete(suspicions).where(suspicions.c.user_id == target.id))
        reply["new_suspicion"] = 0
    reply.update(await _move_kudos(conn, horde, target.id, movements))
    after_commit(conn, lambda: _forget_users(horde))
    if "username" in reply:
        reply["username"] = f"{values['username']}#{target.id}"
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


async def delete_user(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str
) -> SimpleResponse:
    """DELETE /users/{id}: the first call soft-deletes; a later one wipes once the user has been
    inactive 30 days (since its last recorded activity or its deletion, whichever is later)."""
    target = await load_target(conn, raw_id)
    access.admit(access.DELETE_USER, actor, owner_id=target.id)
    if target.is_anon:
        raise HordeError(RC.AnonForbiddenUserMod, "The anonymous user cannot be deleted")
    if target.moderator:
        raise HordeError(RC.CannotDeleteMod, "Moderators cannot be deleted")
    now = horde.clock.now()
    after_commit(conn, lambda: _forget_users(horde))
    if not target.deleted:
        await conn.execute(
            update(users).where(users.c.id == target.id).values(deleted=True, last_active=utc(now))
        )
        return SimpleResponse(message=f"User {target.alias} deleted")
    if utc(now) - target.last_active < WIPE_AFTER:
        raise HordeError(
            RC.CannotWipeActiveUser,
            "A user can be wiped only after 30 days without activity since its deletion",
        )
    await _wipe(conn, horde, target)
    return SimpleResponse(message=f"User {target.alias} wiped")


async def _wipe(conn: AsyncConnection, horde: Horde, target: User) -> None:
    """Erase the user's identity and key; its postings stay under the id as anonymous history, so every
    balance and `horde kudos verify` still add up."""
    await conn.execute(
        update(users)
        .where(users.c.id == target.id)
        .values(
            username="deleted", oauth_id=f"{WIPED_PREFIX}{target.id}",
            api_key_hash=hash_api_key(new_api_key(), pepper=horde.pepper), contact=None, admin_comment=None,
            proxy_passkey_hash=None, public_workers=False, trusted=False, flagged=False, customizer=False,
            service=False, education=False, vpn=False, special=False,
        )
    )  # fmt: skip
    await conn.execute(delete(suspicions).where(suspicions.c.user_id == target.id))
    await monthly.set_monthly_kudos(conn, user_id=target.id, amount=0, now=horde.clock.now())
