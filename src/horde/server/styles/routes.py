"""`/styles/image|text`, image style examples, `/collections`, `/collection_by_name` (SEMANTICS.md 1.9)."""

from __future__ import annotations

from fastapi import APIRouter

from horde.contract import (
    InputModelCollection,
    InputStyleExamplePost,
    ModelStyleInputKobold,
    ModelStyleInputStable,
    ModelStylePatchKobold,
    ModelStylePatchStable,
    ResponseModelCollection,
    SimpleResponse,
    StyleKobold,
    StyleModify,
    StyleStable,
)
from horde.server.auth import Conn, CurrentUser, HordeDep, ReadConn
from horde.server.kit.routing import HordeRoute
from horde.server.styles import collections, service
from horde.server.styles.service import StyleOut

router = APIRouter(tags=["v2"], route_class=HordeRoute)


# image styles
@router.get("/styles/image", response_model=list[StyleStable])
async def get_image_styles(
    conn: ReadConn, sort: str = "popular", page: int = 1, tag: str | None = None, model: str | None = None
) -> list[StyleOut]:
    return await service.list_styles(conn, kind="image", sort=sort, page=page, tag=tag, model=model)


@router.post("/styles/image", response_model=StyleModify)
async def post_image_style(
    body: ModelStyleInputStable, horde: HordeDep, user: CurrentUser, conn: Conn
) -> StyleModify:
    return await service.create_style(conn, horde=horde, actor=user, kind="image", body=body)


@router.get("/styles/image/{style_id}", response_model=StyleStable)
async def get_image_style(style_id: str, conn: ReadConn) -> StyleOut:
    return await service.get_style(conn, kind="image", raw_id=style_id)


@router.patch("/styles/image/{style_id}", response_model=StyleModify)
async def patch_image_style(
    style_id: str, body: ModelStylePatchStable, horde: HordeDep, user: CurrentUser, conn: Conn
) -> StyleModify:
    return await service.modify_style(conn, horde=horde, actor=user, kind="image", raw_id=style_id, body=body)


@router.delete("/styles/image/{style_id}", response_model=SimpleResponse)
async def delete_image_style(style_id: str, horde: HordeDep, user: CurrentUser, conn: Conn) -> SimpleResponse:
    return await service.delete_style(conn, horde=horde, actor=user, kind="image", raw_id=style_id)


@router.get("/styles/image_by_name/{style_name}", response_model=StyleStable)
async def get_image_style_by_name(style_name: str, conn: ReadConn) -> StyleOut:
    return await service.get_style_by_name(conn, kind="image", name=style_name)


@router.post("/styles/image/{style_id}/example", response_model=StyleModify)
async def post_image_style_example(
    style_id: str, body: InputStyleExamplePost, horde: HordeDep, user: CurrentUser, conn: Conn
) -> StyleModify:
    return await service.add_example(conn, horde=horde, actor=user, raw_id=style_id, body=body)


@router.patch("/styles/image/{style_id}/example/{example_id}", response_model=StyleModify)
async def patch_image_style_example(
    style_id: str, example_id: str, body: InputStyleExamplePost, user: CurrentUser, conn: Conn
) -> StyleModify:
    return await service.modify_example(conn, actor=user, raw_id=style_id, example_id=example_id, body=body)


@router.delete("/styles/image/{style_id}/example/{example_id}", response_model=SimpleResponse)
async def delete_image_style_example(
    style_id: str, example_id: str, user: CurrentUser, conn: Conn
) -> SimpleResponse:
    return await service.delete_example(conn, actor=user, raw_id=style_id, example_id=example_id)


# text styles
@router.get("/styles/text", response_model=list[StyleKobold])
async def get_text_styles(
    conn: ReadConn, sort: str = "popular", page: int = 1, tag: str | None = None, model: str | None = None
) -> list[StyleOut]:
    return await service.list_styles(conn, kind="text", sort=sort, page=page, tag=tag, model=model)


@router.post("/styles/text", response_model=StyleModify)
async def post_text_style(
    body: ModelStyleInputKobold, horde: HordeDep, user: CurrentUser, conn: Conn
) -> StyleModify:
    return await service.create_style(conn, horde=horde, actor=user, kind="text", body=body)


@router.get("/styles/text/{style_id}", response_model=StyleKobold)
async def get_text_style(style_id: str, conn: ReadConn) -> StyleOut:
    return await service.get_style(conn, kind="text", raw_id=style_id)


@router.patch("/styles/text/{style_id}", response_model=StyleModify)
async def patch_text_style(
    style_id: str, body: ModelStylePatchKobold, horde: HordeDep, user: CurrentUser, conn: Conn
) -> StyleModify:
    return await service.modify_style(conn, horde=horde, actor=user, kind="text", raw_id=style_id, body=body)


@router.delete("/styles/text/{style_id}", response_model=SimpleResponse)
async def delete_text_style(style_id: str, horde: HordeDep, user: CurrentUser, conn: Conn) -> SimpleResponse:
    return await service.delete_style(conn, horde=horde, actor=user, kind="text", raw_id=style_id)


@router.get("/styles/text_by_name/{style_name}", response_model=StyleKobold)
async def get_text_style_by_name(style_name: str, conn: ReadConn) -> StyleOut:
    return await service.get_style_by_name(conn, kind="text", name=style_name)


# collections
@router.get("/collections", response_model=list[ResponseModelCollection])
async def get_collections(
    conn: ReadConn, sort: str = "popular", page: int = 1, type: str = "all"
) -> list[ResponseModelCollection]:
    return await collections.list_collections(conn, sort=sort, page=page, kind=type)


@router.post("/collections", response_model=StyleModify)
async def post_collection(
    body: InputModelCollection, horde: HordeDep, user: CurrentUser, conn: Conn
) -> StyleModify:
    return await collections.create_collection(conn, horde=horde, actor=user, body=body)


@router.get("/collections/{collection_id}", response_model=ResponseModelCollection)
async def get_collection(collection_id: str, conn: ReadConn) -> ResponseModelCollection:
    return await collections.get_collection(conn, raw_id=collection_id)


@router.patch("/collections/{collection_id}", response_model=StyleModify)
async def patch_collection(
    collection_id: str, body: InputModelCollection, user: CurrentUser, conn: Conn
) -> StyleModify:
    return await collections.modify_collection(conn, actor=user, raw_id=collection_id, body=body)


@router.delete("/collections/{collection_id}", response_model=SimpleResponse)
async def delete_collection(collection_id: str, user: CurrentUser, conn: Conn) -> SimpleResponse:
    return await collections.delete_collection(conn, actor=user, raw_id=collection_id)


@router.get("/collection_by_name/{collection_name}", response_model=ResponseModelCollection)
async def get_collection_by_name(collection_name: str, conn: ReadConn) -> ResponseModelCollection:
    return await collections.get_collection_by_name(conn, name=collection_name)
