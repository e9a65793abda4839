"""The lean hot path (ADR 0020): the hottest routes answered without FastAPI's request machinery.

An empty pop's own work is a small share of its CPU; the rest was FastAPI and Starlette: matching the
path against every route before it, solving dependencies, validating the body, building and sending a
`Response`. `LeanMiddleware` sits innermost among the middleware (inside observation, CORS, the client
IP, rate limits, the body guard and field masks, which therefore still apply), matches the hot routes'
exact method and path in one dictionary look-up, and calls a small handler that does what FastAPI did
for that route, in the same order, with the route's own body and response fields:

1. the body as FastAPI reads it (strict content type, `loads_finite`), a decode error being its 400;
2. the `apikey` user and the door of the route's access row (`Key.REQUIRED` routes);
3. the body validated by the registered route's body field (same errors, same locations);
4. the same service function; the answer rendered as FastAPI would (`JSONResponse` for pre-built
   bodies, the route's response field's `serialize_json` for models), sent as two ASGI messages.

Exceptions go through the app's own exception handlers (those FastAPI's `ExceptionMiddleware` would
use); what they do not handle goes on up, to the same last-resort handler as before. Every other
request, and every hot request when `HORDE_LEAN_HOT_PATHS=0`, goes to FastAPI unchanged; the FastAPI
routes stay registered, so the served OpenAPI is what it was (tests/server/test_lean.py compares the
two paths answer for answer).
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from horde.server import access
from horde.server.auth import Spender, key_of, required_user, spending_user
from horde.server.clientip import client_ip
from horde.server.kit.routing import loads_finite
from horde.server.state import Horde
from horde.server.users.principal import Principal

_JSON = b"application/json"


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer: status, JSON body bytes and any extra headers (lower-case names)."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


def json_answer(content: Any, *, status: int = 200, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Answer:
    """What `JSONResponse(content, headers=...)` sends, byte for byte."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    return Answer(status, body.encode("utf-8"), headers)


Handler = Callable[["LeanCall"], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class LeanRoute:
    """A hot route's lean handler: `path` is the full template (at most one trailing `{param}`), `key`
    how it reads the `apikey` header (checked against its access row when the app is built)."""

    method: str
    path: str
    handler: Handler
    key: access.Key


@dataclass(frozen=True, slots=True)
class _Bound:
    """A lean route bound to its registered FastAPI route (for the body and response fields) and its
    access row; the ObserveMiddleware reads `path` (the template) for its metrics label."""

    path: str
    handler: Handler
    route: APIRoute
    rule: access.Rule


class LeanCall:
    """One request on the lean path: what its handler reads, in the order FastAPI would read it."""

    __slots__ = ("_bound", "_headers", "horde", "param", "receive", "scope")

    def __init__(self, bound: _Bound, horde: Horde, scope: Scope, receive: Receive, param: str) -> None:
        self._bound = bound
        self.horde = horde
        self.scope = scope
        self.receive = receive
        self.param = param  # the trailing path parameter ("" without one)
        self._headers: Headers | None = None

    def header(self, name: str) -> str | None:
        """A request header (the first, as Starlette's `request.headers.get`); `name` lower-case."""
        if self._headers is None:
            self._headers = Headers(scope=self.scope)
        return self._headers.get(name)

    @property
    def ip(self) -> str:
        return client_ip(self.scope)

    async def is_disconnected(self) -> bool:
        return await Request(self.scope, self.receive).is_disconnected()

    async def worker(self) -> tuple[Principal, Any]:
        """The `apikey` user past the route's door, and the validated body: what FastAPI gives a route
        that takes a body model and the `caller` dependency, with its errors in its order (a body
        that is no JSON first, then the key, then the body's validation)."""
        raw = await self._json()
        if self._headers is None:
            self._headers = Headers(scope=self.scope)
        user = await required_user(self.horde, key_of(self._headers))
        access.admit_door(self._bound.rule, user)
        return user, self._validate(raw)

    async def spender(self) -> tuple[Spender, Any]:
        """As `worker`, for the generate routes that also take a shared key as the key."""
        raw = await self._json()
        if self._headers is None:
            self._headers = Headers(scope=self.scope)
        who = await spending_user(self.horde, key_of(self._headers), self._bound.rule)
        return who, self._validate(raw)

    async def _json(self) -> Any:
        """The body as FastAPI's request handler reads it for a JSON body field."""
        try:
            body = await Request(self.scope, self.receive).body()
            if not body:
                return _UNDEFINED
            content_type = self.header("content-type")
            if content_type is None:  # strict content type: the bytes are validated, and refused
                return body
            if content_type != "application/json" and not _json_type(content_type):
                return body
            return loads_finite(body)
        except json.JSONDecodeError as exc:
            error = {
                "type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {},
                "ctx": {"error": exc.msg},
            }  # fmt: skip
            raise RequestValidationError([error], body=exc.doc) from exc
        except Exception as exc:
            raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc

    def _validate(self, raw: Any) -> Any:
        field = self._bound.route.body_field
        assert field is not None
        if raw is _UNDEFINED:
            raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
        value, errors = field.validate(raw, {}, loc=("body",))
        if errors:
            raise RequestValidationError(errors, body=raw)
        return value

    def model_answer(self, content: Any, *, status: int | None = None) -> Answer:
        """What FastAPI sends for a handler's return value: validated and serialised by the route's
        response field, with the route's status code unless `status` is given."""
        route = self._bound.route
        field = route.response_field
        assert field is not None
        value, errors = field.validate(content, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors=errors, body=content)
        body = field.serialize_json(
            value,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
        )
        return Answer(status if status is not None else route.status_code or 200, body)


_UNDEFINED: Any = object()


def _json_type(content_type: str) -> bool:
    """FastAPI's test of a body's content type: application/json or application/*+json."""
    parsed = email.message.Message()
    parsed["content-type"] = content_type
    subtype = parsed.get_content_subtype()
    return parsed.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


Table = dict[tuple[str, str], _Bound]


def _bind(app: FastAPI, routes: list[LeanRoute]) -> tuple[Table, Table]:
    """Each lean route with its FastAPI route and access row; refuses one that has neither, or whose
    key reading disagrees with its row (as `install_guards` refuses such a FastAPI route)."""
    registered: dict[tuple[str, str], APIRoute] = {}
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            for method in context.methods or ():
                registered.setdefault((method, str(context.path)), context.original_route)
    exact: Table = {}
    templates: Table = {}  # keyed by the path up to its trailing parameter
    for lean in routes:
        name = f"{lean.method} {lean.path}"
        route = registered.get((lean.method, lean.path))
        rule = access.ACCESS.get(name)
        if route is None or rule is None or rule.key is not lean.key:
            raise RuntimeError(f"lean route {name}: no FastAPI route, no access row, or another key")
        head, slash, tail = lean.path.rpartition("/")
        if tail.startswith("{"):
            templates[(lean.method, head + slash)] = _Bound(lean.path, lean.handler, route, rule)
        else:
            exact[(lean.method, lean.path)] = _Bound(lean.path, lean.handler, route, rule)
    return exact, templates


class LeanMiddleware:
    """Answers the lean routes itself; everything else goes on to FastAPI (see the module's doc)."""

    def __init__(self, app: ASGIApp, *, fastapi: FastAPI, routes: list[LeanRoute]) -> None:
        self.app = app
        self.fastapi = fastapi
        self.exact, self.templates = _bind(fastapi, routes)
        handlers = fastapi.exception_handlers
        # what Starlette's ExceptionMiddleware handles (500 and Exception belong to the outermost layer)
        self._by_class = {k: v for k, v in handlers.items() if isinstance(k, type) and k is not Exception}
        self._by_status = {k: v for k, v in handlers.items() if isinstance(k, int) and k != 500}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bound = param = None
        if scope["type"] == "http" and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            bound = self.exact.get((method, path))
            if bound is None:
                head, slash, param = path.rpartition("/")
                if param:
                    bound = self.templates.get((method, head + slash))
        if bound is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = bound  # the metrics label (ObserveMiddleware reads its template)
        call = LeanCall(bound, self.fastapi.state.horde, scope, receive, param or "")
        try:
            answer = await bound.handler(call)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        headers = [
            *answer.headers,
            (b"content-length", str(len(answer.body)).encode()),
            (b"content-type", _JSON),
        ]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _handler(self, exc: Exception) -> Callable[[Request, Exception], Awaitable[Response]] | None:
        if isinstance(exc, HTTPException) and exc.status_code in self._by_status:
            return _typed(self._by_status[exc.status_code])
        for cls in type(exc).__mro__:
            if cls in self._by_class:
                return _typed(self._by_class[cls])
        return None


def _typed(handler: Any) -> Callable[[Request, Exception], Awaitable[Response]]:
    return handler  # type: ignore[no-any-return]


def lean_routes(*groups: Mapping[tuple[str, str], tuple[Handler, access.Key]]) -> list[LeanRoute]:
    """LeanRoutes from `{(method, full path): (handler, key)}` tables (one per domain)."""
    return [LeanRoute(m, p, h, k) for group in groups for (m, p), (h, k) in group.items()]
