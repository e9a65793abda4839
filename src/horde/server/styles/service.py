"""Image and text styles and the examples of image styles (SEMANTICS.md 1.9, ADR 0024).

Invariants: a style's name is unique per user (case-sensitive); its prompt carries `{p}` (and `{np}`
for images); it names 1-5 models and at most 10 tags; `style_tags`/`style_models` mirror its `tags`/
`models` for the list's filters; an image style has at most 4 examples, https URLs, distinct, exactly
one of them primary when there are any; `use_count` is written only by the fold of `style_uses`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Select, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import (
    InputStyleExamplePost,
    ModelStyleInputParamsKobold,
    ModelStyleInputParamsStable,
    SimpleResponse,
    StyleExample,
    StyleKobold,
    StyleModify,
    StyleStable,
    limits,
)
from horde.contract.rc import RC
from horde.server import access
from horde.server.errors import HordeError
from horde.server.kit.orm import table, utc
from horde.server.state import Horde
from horde.server.styles import lookup
from horde.server.styles.models import StyleExample as ExampleRow
from horde.server.styles.models import StyleModel, StyleTag
from horde.server.users.principal import Principal

styles = lookup.styles
tags = table(StyleTag)
models = table(StyleModel)
examples = table(ExampleRow)

StyleOut = StyleStable | StyleKobold


@dataclass(frozen=True, slots=True)
class StyleKind:
    """What differs between image and text styles: data, not branches."""

    name: Literal["image", "text"]
    placeholders: tuple[str, ...]
    params: type[BaseModel]
    out: type[StyleStable] | type[StyleKobold]
    not_found: RC


STYLE_KINDS = {
    "image": StyleKind(
        "image", ("{p}", "{np}"), ModelStyleInputParamsStable, StyleStable, RC.ImageStyleNotFound
    ),
    "text": StyleKind("text", ("{p}",), ModelStyleInputParamsKobold, StyleKobold, RC.StyleNotFound),
}


def bad(message: str) -> HordeError:
    """The reference's generic 400: its style rcs (StylePromptMissingVars, TooManyStyleExamples,
    ExampleURLAlreadyInUse, SharedKeyInvalid...) are passed in the wrong argument slot (SEMANTICS 2)."""
    return HordeError(RC.BadRequest, message)


def check_page(page: int) -> None:
    if not 1 <= page <= limits.MAX_STYLES_PAGE:
        raise bad(f"page must be 1 to {limits.MAX_STYLES_PAGE}")


def _not_found(kind: StyleKind, raw: str) -> HordeError:
    return HordeError(kind.not_found, f"{kind.name.capitalize()} style '{raw}' not found")


# --- reading --------------------------------------------------------------------------------------


async def _examples(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[StyleExample]]:
    found: dict[uuid.UUID, list[StyleExample]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await conn.execute(
        select(examples).where(examples.c.style_id.in_(ids)).order_by(examples.c.created_at, examples.c.id)
    )
    for row in rows:
        found[row.style_id].append(StyleExample(id=str(row.id), url=row.url, primary=row.is_primary))
    return found


async def render(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> list[StyleOut]:
    """Styles as the API shows them (rows of `lookup.style_select`), examples in one more query."""
    image_ids = [row["id"] for row in rows if row["kind"] == "image"]
    shown = await _examples(conn, image_ids)
    out: list[StyleOut] = []
    for row in rows:
        fields = {
            "id": str(row["id"]), "name": row["name"], "info": row["info"], "prompt": row["prompt"],
            "params": row["params"], "public": row["public"], "nsfw": row["nsfw"], "tags": row["tags"],
            "models": row["models"], "use_count": row["use_count"],
            "creator": f"{row['creator_name']}#{row['user_id']}",
        }  # fmt: skip
        if row["kind"] == "image":
            out.append(StyleStable.model_validate({**fields, "examples": shown[row["id"]]}))
        else:
            out.append(StyleKobold.model_validate(fields))
    return out


def _listing(kind: StyleKind, *, sort: str, page: int, tag: str | None, model: str | None) -> Select[Any]:
    if sort not in ("popular", "age"):
        raise bad("sort must be 'popular' or 'age'")
    check_page(page)
    statement = lookup.style_select().where(styles.c.kind == kind.name, styles.c.public.is_(True))
    if tag:
        statement = statement.where(exists().where(tags.c.style_id == styles.c.id, tags.c.tag == tag))
    if model:
        statement = statement.where(exists().where(models.c.style_id == styles.c.id, models.c.model == model))
    order = styles.c.use_count.desc() if sort == "popular" else styles.c.created_at.desc()
    # the reference skips page-1 rows (not pages): a page here is 25 rows on from the last (ADR 0024)
    size = limits.STYLES_PAGE_SIZE
    return statement.order_by(order, styles.c.id).offset((page - 1) * size).limit(size)


async def list_styles(
    conn: AsyncConnection, *, kind: str, sort: str, page: int, tag: str | None, model: str | None
) -> list[StyleOut]:
    """One page of the public styles of a kind, most used (or newest) first."""
    statement = _listing(STYLE_KINDS[kind], sort=sort, page=page, tag=tag, model=model)
    return await render(conn, [dict(row._mapping) for row in await conn.execute(statement)])


async def _style(conn: AsyncConnection, kind: StyleKind, raw_id: str) -> Mapping[str, Any]:
    row = await lookup.style_by_id(conn, raw_id)
    if row is None:
        raise _not_found(kind, raw_id)
    if row["kind"] != kind.name:  # the reference's StyleGetMistmatch, a generic 400 on the wire
        raise bad(f"Style '{raw_id}' is not a {kind.name} style")
    return row


async def get_style(conn: AsyncConnection, *, kind: str, raw_id: str) -> StyleOut:
    """One style by id; private styles too (their id is how they are shared)."""
    return (await render(conn, [await _style(conn, STYLE_KINDS[kind], raw_id)]))[0]


async def get_style_by_name(conn: AsyncConnection, *, kind: str, name: str) -> StyleOut:
    """One style by any of the four name forms."""
    style_kind = STYLE_KINDS[kind]
    form = lookup.parse_name(name)
    row = await lookup.style_by_name(conn, form) if form is not None else None
    if row is None:
        raise _not_found(style_kind, name)
    if row["kind"] != style_kind.name:
        raise bad(f"Style '{name}' is not a {style_kind.name} style")
    return (await render(conn, [row]))[0]


# --- writing --------------------------------------------------------------------------------------


def _check_prompt(kind: StyleKind, prompt: str) -> None:
    missing = [p for p in kind.placeholders if p not in prompt]
    if missing:
        raise bad(f"A {kind.name} style's prompt must contain {' and '.join(kind.placeholders)}")


def _check_models(names: list[str]) -> list[str]:
    unique = list(dict.fromkeys(names))
    if not limits.MIN_STYLE_MODELS <= len(unique) <= limits.MAX_STYLE_MODELS:
        raise bad(f"A style names {limits.MIN_STYLE_MODELS} to {limits.MAX_STYLE_MODELS} models")
    return unique


def _check_tags(names: list[str]) -> list[str]:
    unique = list(dict.fromkeys(names))
    if len(unique) > limits.MAX_STYLE_TAGS:
        raise bad(f"A style can have at most {limits.MAX_STYLE_TAGS} tags")
    return unique


def _check_sharedkey(raw: str | None) -> str | None:
    """A shared key's id: a UUID (its charging is the shared keys domain's, ADR 0024); "" detaches."""
    if not raw:
        return None
    parsed = lookup.parse_uuid(raw)
    if parsed is None:
        raise bad("sharedkey must be the UUID of a shared key")
    return str(parsed)


async def _check_name_free(
    conn: AsyncConnection, user_id: int, name: str, *, style_id: uuid.UUID | None = None
) -> None:
    found = await conn.scalar(select(styles.c.id).where(styles.c.user_id == user_id, styles.c.name == name))
    if found is not None and found != style_id:
        raise bad(f"You already have a style named '{name}'")


async def _set_filters(conn: AsyncConnection, style_id: uuid.UUID, *, tag_names: list[str] | None,
                       model_names: list[str] | None) -> None:  # fmt: skip
    for target, column, names in ((tags, "tag", tag_names), (models, "model", model_names)):
        if names is None:
            continue
        await conn.execute(delete(target).where(target.c.style_id == style_id))
        if names:
            await conn.execute(insert(target), [{"style_id": style_id, column: n} for n in names])


async def create_style(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, kind: str, body: Any
) -> StyleModify:
    """A new style of the (customizer or trusted) caller's."""
    access.admit(access.CREATE_STYLE, actor)
    style_kind = STYLE_KINDS[kind]
    _check_prompt(style_kind, body.prompt)
    model_names, tag_names = _check_models(body.models), _check_tags(body.tags)
    sharedkey = _check_sharedkey(body.sharedkey)
    await _check_name_free(conn, actor.id, body.name)
    style_id = uuid.uuid4()
    try:
        await conn.execute(
            insert(styles).values(
                id=style_id, kind=kind, user_id=actor.id, name=body.name, info=body.info, prompt=body.prompt,
                params=body.params.model_dump(mode="json", exclude_none=True), models=model_names,
                tags=tag_names, public=body.public, nsfw=body.nsfw, sharedkey_id=sharedkey, use_count=0,
                created_at=utc(horde.clock.now()),
            )
        )  # fmt: skip
    except IntegrityError:  # a concurrent creation took the name between the check and the insert
        raise bad(f"You already have a style named '{body.name}'") from None
    await _set_filters(conn, style_id, tag_names=tag_names, model_names=model_names)
    return StyleModify(id=str(style_id))


def _changes(kind: StyleKind, body: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    sent = body.model_fields_set
    for name in ("name", "info", "public", "nsfw"):
        if name in sent and getattr(body, name) is not None:
            values[name] = getattr(body, name)
    if body.prompt is not None:
        _check_prompt(kind, body.prompt)
        values["prompt"] = body.prompt
    if body.params is not None:
        values["params"] = body.params.model_dump(mode="json", exclude_none=True)
    if body.models is not None:
        values["models"] = _check_models(body.models)
    if body.tags is not None:
        values["tags"] = _check_tags(body.tags)
    if "sharedkey" in sent:
        values["sharedkey_id"] = _check_sharedkey(body.sharedkey)
    return values


async def modify_style(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, kind: str, raw_id: str, body: Any
) -> StyleModify:
    """Change the fields sent (the style's owner only)."""
    style_kind = STYLE_KINDS[kind]
    style = await _style(conn, style_kind, raw_id)
    access.admit(access.CHANGE_STYLE, actor, owner_id=style["user_id"], name=style["name"])
    values = _changes(style_kind, body)
    if not values:
        raise bad(f"No modification selected for style '{style['name']}'")
    if "name" in values:
        await _check_name_free(conn, style["user_id"], values["name"], style_id=style["id"])
    try:
        await conn.execute(update(styles).where(styles.c.id == style["id"]).values(**values))
    except IntegrityError:
        raise bad(f"You already have a style named '{values['name']}'") from None
    await _set_filters(conn, style["id"], tag_names=values.get("tags"), model_names=values.get("models"))
    return StyleModify(id=str(style["id"]))


async def delete_style(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, kind: str, raw_id: str
) -> SimpleResponse:
    """Delete a style (its owner or a moderator); its examples, filters and collection places go too."""
    style = await _style(conn, STYLE_KINDS[kind], raw_id)
    access.admit(access.DELETE_STYLE, actor, owner_id=style["user_id"], name=style["name"])
    await conn.execute(delete(styles).where(styles.c.id == style["id"]))
    return SimpleResponse(message="OK")


# --- examples -------------------------------------------------------------------------------------


def _check_url(url: str) -> None:
    if not url.startswith("https://") or len(url) <= len("https://"):
        raise bad("An example's URL must be an https:// URL")


async def _example_style(conn: AsyncConnection, actor: Principal, raw_id: str) -> Mapping[str, Any]:
    style = await _style(conn, STYLE_KINDS["image"], raw_id)
    access.admit(access.STYLE_EXAMPLE, actor, owner_id=style["user_id"], name=style["name"])
    return style


async def _make_primary(conn: AsyncConnection, style_id: uuid.UUID, example_id: uuid.UUID) -> None:
    await conn.execute(
        update(examples).where(examples.c.style_id == style_id).values(is_primary=examples.c.id == example_id)
    )


async def add_example(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, raw_id: str, body: InputStyleExamplePost
) -> StyleModify:
    """Add an example image (the style's owner or a moderator); the first one is the primary."""
    style = await _example_style(conn, actor, raw_id)
    _check_url(body.url)
    present = (await conn.execute(select(examples.c.url).where(examples.c.style_id == style["id"]))).scalars()
    urls = list(present)
    if len(urls) >= limits.MAX_STYLE_EXAMPLES:
        raise bad(f"A style can have at most {limits.MAX_STYLE_EXAMPLES} examples")
    if body.url in urls:
        raise bad("This URL is already an example of this style")
    example_id = uuid.uuid4()
    primary = body.primary or not urls
    await conn.execute(
        insert(examples).values(
            id=example_id, style_id=style["id"], url=body.url, is_primary=primary,
            created_at=utc(horde.clock.now()),
        )
    )  # fmt: skip
    if primary and urls:
        await _make_primary(conn, style["id"], example_id)
    return StyleModify(id=str(example_id))


async def _example(conn: AsyncConnection, style: Mapping[str, Any], raw_id: str) -> Mapping[str, Any]:
    example_id = lookup.parse_uuid(raw_id)
    row = None
    if example_id is not None:
        query = select(examples).where(examples.c.id == example_id, examples.c.style_id == style["id"])
        row = (await conn.execute(query)).first()
    if row is None:
        raise HordeError(RC.StyleNotFound, f"Style example '{raw_id}' not found")
    return dict(row._mapping)


async def modify_example(
    conn: AsyncConnection, *, actor: Principal, raw_id: str, example_id: str, body: InputStyleExamplePost
) -> StyleModify:
    """Change an example's URL and whether it is the primary one."""
    style = await _example_style(conn, actor, raw_id)
    example = await _example(conn, style, example_id)
    _check_url(body.url)
    taken = await conn.scalar(
        select(examples.c.id).where(
            examples.c.style_id == style["id"], examples.c.url == body.url, examples.c.id != example["id"]
        )
    )
    if taken is not None:
        raise bad("This URL is already an example of this style")
    await conn.execute(update(examples).where(examples.c.id == example["id"]).values(url=body.url))
    if body.primary and not example["is_primary"]:
        await _make_primary(conn, style["id"], example["id"])
    return StyleModify(id=str(example["id"]))


async def delete_example(
    conn: AsyncConnection, *, actor: Principal, raw_id: str, example_id: str
) -> SimpleResponse:
    """Remove an example; when it was the primary one, the oldest left takes its place."""
    style = await _example_style(conn, actor, raw_id)
    example = await _example(conn, style, example_id)
    await conn.execute(delete(examples).where(examples.c.id == example["id"]))
    if example["is_primary"]:
        oldest = await conn.scalar(
            select(examples.c.id)
            .where(examples.c.style_id == style["id"])
            .order_by(examples.c.created_at, examples.c.id)
            .limit(1)
        )
        if oldest is not None:
            await _make_primary(conn, style["id"], oldest)
    return SimpleResponse(message="OK")
