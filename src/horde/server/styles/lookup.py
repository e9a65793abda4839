"""Finding a style or collection by id or by any of its four name forms (SEMANTICS.md 1.9).

`alias#id::style::name`, `style::name`, `alias#id::name` and `name` (`collection` in place of `style`
for collections). Names are unique per user, not across users: a form without the owner takes the
oldest match. Only the id part of an alias is read (a user may rename themself).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.server.kit.orm import table
from horde.server.styles.models import Style, StyleCollection
from horde.server.users.models import User

styles = table(Style)
collections = table(StyleCollection)
users = table(User)

STYLE_WORD, COLLECTION_WORD = "style", "collection"


@dataclass(frozen=True, slots=True)
class NameForm:
    """A parsed name: the owner's id when the form names one, the word (style/collection) when it
    says which it is, and the bare name."""

    owner_id: int | None
    word: str | None
    name: str


def parse_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _owner_id(alias: str) -> int | None:
    _, _, digits = alias.rpartition("#")
    # ids are 32-bit integers: a longer number names nobody (and must not reach the database)
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 9 else None


def parse_name(raw: str) -> NameForm | None:
    """The parts of a name in any of the four forms; None when it cannot name anything."""
    parts = raw.split("::")
    if len(parts) == 1:
        return NameForm(None, None, raw)
    if len(parts) == 2:
        if parts[0] in (STYLE_WORD, COLLECTION_WORD):
            return NameForm(None, parts[0], parts[1])
        owner = _owner_id(parts[0])
        return NameForm(owner, None, parts[1]) if owner is not None else None
    if len(parts) == 3 and parts[1] in (STYLE_WORD, COLLECTION_WORD):
        owner = _owner_id(parts[0])
        return NameForm(owner, parts[1], parts[2]) if owner is not None else None
    return None


def style_select() -> Select[Any]:
    """A style's row with its creator's username (`creator_name`)."""
    return select(styles, users.c.username.label("creator_name")).join(users, users.c.id == styles.c.user_id)


def collection_select() -> Select[Any]:
    return select(collections, users.c.username.label("creator_name")).join(
        users, users.c.id == collections.c.user_id
    )


async def _first(conn: AsyncConnection, statement: Select[Any]) -> Mapping[str, Any] | None:
    row = (await conn.execute(statement.limit(1))).first()
    return dict(row._mapping) if row is not None else None


async def style_by_id(conn: AsyncConnection, raw_id: str) -> Mapping[str, Any] | None:
    style_id = parse_uuid(raw_id)
    if style_id is None:
        return None
    return await _first(conn, style_select().where(styles.c.id == style_id))


async def style_by_name(conn: AsyncConnection, form: NameForm) -> Mapping[str, Any] | None:
    if form.word == COLLECTION_WORD:
        return None
    statement = style_select().where(styles.c.name == form.name)
    if form.owner_id is not None:
        statement = statement.where(styles.c.user_id == form.owner_id)
    return await _first(conn, statement.order_by(styles.c.created_at, styles.c.id))


async def collection_by_id(conn: AsyncConnection, raw_id: str) -> Mapping[str, Any] | None:
    collection_id = parse_uuid(raw_id)
    if collection_id is None:
        return None
    return await _first(conn, collection_select().where(collections.c.id == collection_id))


async def collection_by_name(conn: AsyncConnection, form: NameForm) -> Mapping[str, Any] | None:
    if form.word == STYLE_WORD:
        return None
    statement = collection_select().where(collections.c.name == form.name)
    if form.owner_id is not None:
        statement = statement.where(collections.c.user_id == form.owner_id)
    return await _first(conn, statement.order_by(collections.c.created_at, collections.c.id))


def unique_name(creator: str, user_id: int, word: str, name: str) -> str:
    """The name form that names exactly one style or collection: `alias#id::style::name`."""
    return f"{creator}#{user_id}::{word}::{name}"


async def styles_of(conn: AsyncConnection, user_id: int, *, private: bool) -> list[dict[str, str]]:
    """A user's styles as their details list them (`ResponseModelStylesUser`), private ones too when
    `private`, oldest first."""
    statement = style_select().where(styles.c.user_id == user_id)
    if not private:
        statement = statement.where(styles.c.public.is_(True))
    rows = await conn.execute(statement.order_by(styles.c.created_at, styles.c.id))
    return [
        {"name": unique_name(row.creator_name, row.user_id, STYLE_WORD, row.name), "id": str(row.id),
         "type": row.kind}
        for row in rows
    ]  # fmt: skip
