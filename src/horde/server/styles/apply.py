"""A request naming a style (or a collection) in `style` (SEMANTICS.md 8, ADR 0024).

`resolve` runs before the request's own checks: it finds the style (a collection gives one of its
styles at random) and rewrites the request as the style makes it (`Kind.with_style`); the request
then carries the style's owner, whose share of the activation tax `jobs.requests` charges with the
tax. `after_queued` runs once the request is stored: it records the use as an insert-only event (the
counts are folded by `styles.scheduled`, so no request updates a popular style's row).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.records import StyleTemplate
from horde.server.kit.orm import table, utc
from horde.server.sharedkeys.service import SharedKeyRow, find_shared_key
from horde.server.sharedkeys.spending import expired_error, is_empty, owner_of
from horde.server.state import Horde
from horde.server.styles import lookup
from horde.server.styles.models import CollectionStyle, StyleUse
from horde.server.users.principal import Principal

members = table(CollectionStyle)
uses = table(StyleUse)


@dataclass(frozen=True, slots=True)
class AppliedStyle:
    """The style a request was made with, and the request as the style made it."""

    style_id: uuid.UUID
    collection_id: uuid.UUID | None
    owner_id: int
    sharedkey_id: str | None
    body: Any


def _not_found(raw: str) -> HordeError:
    return HordeError(RC.StyleNotFound, f"Style '{raw}' not found")


async def _member(conn: AsyncConnection, collection: Mapping[str, Any], raw: str) -> Mapping[str, Any]:
    ids = (
        (await conn.execute(select(members.c.style_id).where(members.c.collection_id == collection["id"])))
        .scalars()
        .all()
    )
    if not ids:
        raise _not_found(raw)
    row = await lookup.style_by_id(conn, str(random.choice(ids)))  # a pick, not a secret
    if row is None:  # deleted between the two reads
        raise _not_found(raw)
    return row


async def find(conn: AsyncConnection, raw: str) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """The style `raw` names (by id or name form) and the collection it came through, if any."""
    style = await lookup.style_by_id(conn, raw)
    if style is not None:
        return style, None
    collection = await lookup.collection_by_id(conn, raw)
    form = lookup.parse_name(raw) if collection is None else None
    if form is not None:
        style = await lookup.style_by_name(conn, form)
        if style is not None:
            return style, None
        collection = await lookup.collection_by_name(conn, form)
    if collection is None:
        raise _not_found(raw)
    return await _member(conn, collection, raw), collection


def _check_use(style: Mapping[str, Any], collection: Mapping[str, Any] | None, *, kind: str,
               user: Principal, raw: str) -> None:  # fmt: skip
    if style["kind"] != kind:  # the reference's StyleMismatch, a generic 400 on the wire
        raise HordeError(RC.BadRequest, f"Style '{raw}' is a {style['kind']} style, not a {kind} one")
    # a private style (or collection) serves its owner only; its id still shows it (GET), ADR 0024
    for thing in (style, collection):
        if thing is not None and not thing["public"] and thing["user_id"] != user.id:
            raise HordeError(RC.Forbidden, f"Style '{raw}' is private")


async def resolve(horde: Horde, *, kind: str, body: Any, user: Principal) -> AppliedStyle | None:
    """The style a request names and the request rewritten by it; None when it names none."""
    raw = getattr(body, "style", None)
    if not raw:
        return None
    async with horde.db.autocommit() as conn:
        style, collection = await find(conn, raw)
    _check_use(style, collection, kind=kind, user=user, raw=raw)
    template = StyleTemplate(
        prompt=style["prompt"], params=dict(style["params"]), models=list(style["models"])
    )
    return AppliedStyle(
        style_id=style["id"], collection_id=collection["id"] if collection is not None else None,
        owner_id=style["user_id"], sharedkey_id=style["sharedkey_id"],
        body=KINDS[kind].with_style(body, template),
    )  # fmt: skip


async def paying_key(horde: Horde, applied: AppliedStyle) -> tuple[Principal, SharedKeyRow] | None:
    """The style's shared key and its owner when the key pays for requests made with the style
    (SEMANTICS.md 8; its per-job caps do not apply): 403 SharedKeyExpired or SharedKeyEmpty when it
    cannot pay; None when the style has no key, or one since deleted (the requester pays)."""
    if not applied.sharedkey_id:
        return None
    async with horde.db.autocommit() as conn:
        key = await find_shared_key(conn, pepper=horde.users.pepper, raw_key=applied.sharedkey_id)
        if key is None or key.user_id != applied.owner_id:  # deleted, or not the style owner's
            return None
        if key.expired(horde.clock.now()):
            raise expired_error(status_code=403)
        if is_empty(key):
            raise HordeError(RC.SharedKeyEmpty, "This style's shared key has no kudos left to spend")
        owner = await owner_of(conn, key, admins=horde.users.admins)
    return owner, key


async def after_queued(horde: Horde, applied: AppliedStyle) -> None:
    """What a queued request owes its style: the use event (the activation tax's share for the style's
    owner is charged with the tax itself, from `NewRequest.style_owner_id`, ADR 0023)."""
    async with horde.db.autocommit() as conn:
        await conn.execute(
            insert(uses).values(
                style_id=applied.style_id, collection_id=applied.collection_id,
                created_at=utc(horde.clock.now()),
            )
        )  # fmt: skip
