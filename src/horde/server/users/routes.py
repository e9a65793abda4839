"""`/find_user`, `/users`, `/users/{id}` (GET PUT DELETE, SEMANTICS.md 1.5) and the `/register` page."""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse

from horde.contract import ModifyUser, ModifyUserInput, SimpleResponse, UserDetails
from horde.server.auth import Conn, CurrentUser, HordeDep, OptionalUser, ReadConn
from horde.server.errors import HordeError
from horde.server.kit.routing import HordeRoute
from horde.server.users import changes, details

router = APIRouter(tags=["v2"], route_class=HordeRoute)
root_router = APIRouter(include_in_schema=False, route_class=HordeRoute)


@router.get("/find_user", response_model=UserDetails)
async def get_find_user(
    horde: HordeDep, conn: ReadConn, apikey: Annotated[str | None, Header()] = None
) -> UserDetails:
    return await details.find_user(conn, horde=horde, api_key=apikey.strip() if apikey else None)


@router.get("/users", response_model=list[UserDetails])
async def get_users(horde: HordeDep, conn: ReadConn, page: int = 1, sort: str = "kudos") -> list[UserDetails]:
    return await details.list_user_details(conn, horde=horde, page=page, sort=sort)


@router.get("/users/{user_id}", response_model=UserDetails)
async def get_user(user_id: str, horde: HordeDep, viewer: OptionalUser, conn: ReadConn) -> UserDetails:
    return await details.get_user_details(conn, horde=horde, raw_id=user_id, viewer=viewer)


@router.put("/users/{user_id}", response_model=ModifyUser)
async def put_user(
    user_id: str, body: ModifyUserInput, horde: HordeDep, user: CurrentUser, conn: Conn
) -> ModifyUser:
    return await changes.modify_user(conn, horde=horde, actor=user, raw_id=user_id, body=body)


@router.delete("/users/{user_id}", response_model=SimpleResponse)
async def delete_user(user_id: str, horde: HordeDep, user: CurrentUser, conn: Conn) -> SimpleResponse:
    return await changes.delete_user(conn, horde=horde, actor=user, raw_id=user_id)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Register - {horde}</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em}}
code{{font-size:1.3em;background:#eee;padding:.2em .4em}}</style></head>
<body><h1>{horde}: get an API key</h1>{content}</body></html>"""

_FORM = """<p>{message}</p>
<form method="post" action="/register">
<label>Username <input name="username" maxlength="30" required autofocus></label>
<button type="submit">Register</button></form>
<p>The key is shown once. Keep it secret: it is your account.</p>"""

_ISSUED = """<p>Welcome, <strong>{alias}</strong>. Your API key is:</p>
<p><code>{key}</code></p>
<p>It is shown only this once and cannot be recovered: store it now.</p>"""

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


def _page(horde_name: str, content: str, status_code: int = 200) -> HTMLResponse:
    body = _PAGE.format(horde=html.escape(horde_name), content=content)
    return HTMLResponse(body, status_code=status_code, headers=_HEADERS)


@root_router.get("/register")
async def get_register(horde: HordeDep) -> HTMLResponse:
    return _page(horde.settings.horde_name, _FORM.format(message="Choose a username (up to 30 characters)."))


@root_router.post("/register")
async def post_register(request: Request, horde: HordeDep, conn: Conn) -> HTMLResponse:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    try:
        new = await details.register_pseudonymous(
            conn, horde=horde, username=(form.get("username") or [""])[0]
        )
    except HordeError as exc:
        content = _FORM.format(message=html.escape(exc.message))
        return _page(horde.settings.horde_name, content, status_code=exc.status_code)
    issued = _ISSUED.format(alias=html.escape(new.user.alias), key=html.escape(new.api_key))
    return _page(horde.settings.horde_name, issued, status_code=201)
