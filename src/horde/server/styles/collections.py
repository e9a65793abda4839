"""Collections of styles (SEMANTICS.md 1.9): named sets of styles of one kind.

Invariants: a collection's name is unique per user; all its styles are of its kind; it names styles
by id or by any name form, stored as ids in the order given; `use_count` is written only by the fold
of `style_uses`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import InputModelCollection, ResponseModelCollection, SimpleResponse, StyleModify, limits
from horde.contract.rc import RC
from horde.contract.users import ResponseModelStylesShort
from horde.server import access
from horde.server.errors import HordeError
from horde.server.kit.orm import table, utc
from horde.server.state import Horde
from horde.server.styles import lookup
from horde.server.styles.models import CollectionStyle
from horde.server.styles.service import bad, check_page
from horde.server.users.principal import Principal

collections = lookup.collections
members = table(CollectionStyle)
styles = lookup.styles
users = lookup.users


def _not_found(raw: str) -> HordeError:
    return HordeError(RC.CollectionNotFound, f"Collection '{raw}' not found")


async def _render(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> list[ResponseModelCollection]:
    ids = [row["id"] for row in rows]
    shorts: dict[uuid.UUID, list[ResponseModelStylesShort]] = {i: [] for i in ids}
    if ids:
        found = await conn.execute(
            select(members.c.collection_id, styles.c.id, styles.c.name, styles.c.user_id, users.c.username)
            .join(styles, styles.c.id == members.c.style_id)
            .join(users, users.c.id == styles.c.user_id)
            .where(members.c.collection_id.in_(ids))
            .order_by(members.c.position)
        )
        for row in found:
            name = lookup.unique_name(row.username, row.user_id, lookup.STYLE_WORD, row.name)
            shorts[row.collection_id].append(ResponseModelStylesShort(name=name, id=str(row.id)))
    return [
        ResponseModelCollection(
            id=str(row["id"]),
            name=row["name"],
            type=row["kind"],
            info=row["info"],
            public=row["public"],
            styles=shorts[row["id"]],
            use_count=row["use_count"],
        )
        for row in rows
    ]


async def list_collections(
    conn: AsyncConnection, *, sort: str, page: int, kind: str
) -> list[ResponseModelCollection]:
    """One page of the public collections (of a kind, or `all`), most used (or newest) first."""
    if sort not in ("popular", "age") or kind not in ("all", "image", "text"):
        raise bad("sort is 'popular' or 'age', type 'all', 'image' or 'text'")
    check_page(page)
    statement = lookup.collection_select().where(collections.c.public.is_(True))
    if kind != "all":
        statement = statement.where(collections.c.kind == kind)
    order = collections.c.use_count.desc() if sort == "popular" else collections.c.created_at.desc()
    size = limits.STYLES_PAGE_SIZE
    statement = statement.order_by(order, collections.c.id).offset((page - 1) * size).limit(size)
    return await _render(conn, [dict(row._mapping) for row in await conn.execute(statement)])


async def _collection(conn: AsyncConnection, raw_id: str) -> Mapping[str, Any]:
    row = await lookup.collection_by_id(conn, raw_id)
    if row is None:
        raise _not_found(raw_id)
    return row


async def get_collection(conn: AsyncConnection, *, raw_id: str) -> ResponseModelCollection:
    """One collection by id (private ones too)."""
    return (await _render(conn, [await _collection(conn, raw_id)]))[0]


async def get_collection_by_name(conn: AsyncConnection, *, name: str) -> ResponseModelCollection:
    """One collection by any of the four name forms."""
    form = lookup.parse_name(name)
    row = await lookup.collection_by_name(conn, form) if form is not None else None
    if row is None:
        raise _not_found(name)
    return (await _render(conn, [row]))[0]


async def _resolve_styles(conn: AsyncConnection, names: list[str]) -> tuple[str, list[uuid.UUID]]:
    """The kind and ids of the styles named (by id or name); one kind only, each style once."""
    if not 1 <= len(names) <= limits.MAX_COLLECTION_STYLES:
        raise bad(f"A collection holds 1 to {limits.MAX_COLLECTION_STYLES} styles")
    ids: list[uuid.UUID] = []
    kinds: set[str] = set()
    for raw in names:
        row = await lookup.style_by_id(conn, raw)
        if row is None:
            form = lookup.parse_name(raw)
            row = await lookup.style_by_name(conn, form) if form is not None else None
        if row is None:
            raise HordeError(RC.StyleNotFound, f"Style '{raw}' not found")
        kinds.add(row["kind"])
        if row["id"] not in ids:
            ids.append(row["id"])
    if len(kinds) > 1:
        raise bad("A collection holds styles of one kind only: image or text")
    return kinds.pop(), ids


async def _check_name_free(
    conn: AsyncConnection, user_id: int, name: str, *, collection_id: uuid.UUID | None = None
) -> None:
    found = await conn.scalar(
        select(collections.c.id).where(collections.c.user_id == user_id, collections.c.name == name)
    )
    if found is not None and found != collection_id:
        raise bad(f"You already have a collection named '{name}'")


async def _set_members(conn: AsyncConnection, collection_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    await conn.execute(delete(members).where(members.c.collection_id == collection_id))
    rows = [{"collection_id": collection_id, "style_id": s, "position": i} for i, s in enumerate(ids)]
    await conn.execute(insert(members), rows)


async def create_collection(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, body: InputModelCollection
) -> StyleModify:
    """A new collection of the (registered) caller's."""
    if body.name is None:
        raise bad("A collection needs a name")
    kind, ids = await _resolve_styles(conn, body.styles or [])
    await _check_name_free(conn, actor.id, body.name)
    collection_id = uuid.uuid4()
    try:
        await conn.execute(
            insert(collections).values(
                id=collection_id, kind=kind, user_id=actor.id, name=body.name, info=body.info,
                public=body.public if body.public is not None else True, use_count=0,
                created_at=utc(horde.clock.now()),
            )
        )  # fmt: skip
    except IntegrityError:
        raise bad(f"You already have a collection named '{body.name}'") from None
    await _set_members(conn, collection_id, ids)
    return StyleModify(id=str(collection_id))


async def modify_collection(
    conn: AsyncConnection, *, actor: Principal, raw_id: str, body: InputModelCollection
) -> StyleModify:
    """Change the fields sent (the collection's owner only); new styles must be of its kind."""
    collection = await _collection(conn, raw_id)
    access.admit(access.CHANGE_COLLECTION, actor, owner_id=collection["user_id"], name=collection["name"])
    values: dict[str, Any] = {
        name: getattr(body, name) for name in ("name", "info", "public") if getattr(body, name) is not None
    }
    ids = None
    if body.styles is not None:
        kind, ids = await _resolve_styles(conn, body.styles)
        if kind != collection["kind"]:
            raise bad(f"Collection '{collection['name']}' holds {collection['kind']} styles only")
    if not values and ids is None:
        raise bad(f"No modification selected for collection '{collection['name']}'")
    if "name" in values:
        await _check_name_free(conn, collection["user_id"], values["name"], collection_id=collection["id"])
    if values:
        try:
            await conn.execute(
                update(collections).where(collections.c.id == collection["id"]).values(**values)
            )
        except IntegrityError:
            raise bad(f"You already have a collection named '{values['name']}'") from None
    if ids is not None:
        await _set_members(conn, collection["id"], ids)
    return StyleModify(id=str(collection["id"]))


async def delete_collection(conn: AsyncConnection, *, actor: Principal, raw_id: str) -> SimpleResponse:
    """Delete a collection (its owner or a moderator); its styles stay."""
    collection = await _collection(conn, raw_id)
    access.admit(access.DELETE_COLLECTION, actor, owner_id=collection["user_id"], name=collection["name"])
    await conn.execute(delete(collections).where(collections.c.id == collection["id"]))
    return SimpleResponse(message="OK")
