"""The server's error type and the handlers that render every failure as `{"message", "rc"}`."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

import asyncpg.exceptions as pg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from horde.contract.rc import RC, rc_status

log = logging.getLogger(__name__)

VALIDATION_MESSAGE = "Input payload validation failed"


class HordeError(Exception):
    """An expected failure: rendered as `{"message", "rc"}` with the reference's HTTP status."""

    def __init__(self, rc: RC | str, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.rc = str(rc)
        self.message = message
        self.status_code = status_code if status_code is not None else rc_status(self.rc)


def error_body(message: str, rc: str) -> dict[str, str]:
    return {"message": message, "rc": rc}


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "payload"


def validation_errors(exc: RequestValidationError) -> dict[str, str]:
    """Flatten pydantic errors into the reference's `{field: reason}` without echoing input."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        if err.get("type") == "json_invalid":  # the body is no JSON: say why, not at which offset
            errors.setdefault("payload", f"JSON decode error: {(err.get('ctx') or {}).get('error', '')}")
            continue
        errors.setdefault(_location(tuple(err.get("loc", ()))), str(err.get("msg", "invalid")))
    return errors


_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def _openai(request: Request) -> bool:
    """Whether the request is one of the OpenAI-compatible API's, whose errors have OpenAI's shape."""
    return request.url.path.startswith("/v1/")


def _openai_error(
    status: int,
    message: str,
    code: str,
    *,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _horde_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HordeError)
    if _openai(request):
        return _openai_error(exc.status_code, exc.message, exc.rc, param=getattr(exc, "param", None))
    return JSONResponse(error_body(exc.message, exc.rc), status_code=exc.status_code)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    if _openai(request):
        if "apikey" in errors:  # OpenAI's clients send the key as Authorization: Bearer
            return _openai_error(
                401, "No API key sent: use Authorization: Bearer <horde API key>", "invalid_api_key"
            )
        field, reason = next(iter(errors.items()))
        return _openai_error(400, f"{field}: {reason}", "BadRequest", param=field)
    return JSONResponse({"message": VALIDATION_MESSAGE, "errors": errors}, status_code=400)


_HTTP_RC = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge", 415: "UnsupportedMediaType"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = "Not Found" if exc.status_code == 404 else str(exc.detail)
    rc = _HTTP_RC.get(exc.status_code, "BadRequest")
    if _openai(request):
        return _openai_error(exc.status_code, message, rc, headers=exc.headers)
    return JSONResponse(error_body(message, rc), status_code=exc.status_code, headers=exc.headers)


async def _overloaded(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("no database connection free in time: %s", exc)
    body = error_body("The horde is overloaded; try again shortly", "Overloaded")
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


def describe(exc: BaseException) -> str:
    """An unexpected error for the log, without the values a statement was given (they can hold
    prompts and keys): a database error shows its class, its statement and the traceback only."""
    if not isinstance(exc, StatementError):
        return "".join(traceback.format_exception(exc)).rstrip()
    cause = type(exc.orig).__name__ if exc.orig is not None else "unknown"
    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    return f"{type(exc).__name__} ({cause}) in statement: {str(exc.statement)[:1000]}\n{frames}"


# What a lost or refused database connection raises: the server restarting or shutting down
# (class 57), a connection gone (class 08), a socket refused or reset; asyncpg says "connection is
# closed" for a connection the server dropped between two statements.
# An InternalClientError is a connection left mid-protocol by a failed operation (the statement
# layer invalidates such a connection, kit/sql.using_driver).
_CONNECTION_ERRORS = (
    pg.PostgresConnectionError, pg.OperatorInterventionError, pg.InternalClientError, OSError
)  # fmt: skip


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached, rather than that a statement failed."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _CONNECTION_ERRORS):
            return True
        if isinstance(current, pg.InterfaceError) and "connection is closed" in str(current):
            return True
        orig = current.orig if isinstance(current, DBAPIError) else None
        current = orig or current.__cause__ or current.__context__
    return False


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    """A lost database answers 503 here, before Starlette's last-resort handler (which closes the
    client's connection); any other database error goes on to `_unexpected`."""
    if not database_unavailable(exc):
        raise exc
    # the pool has dropped the dead connection and opens a new one on the next checkout
    log.warning("database unavailable: %s: %s", type(exc).__name__, (str(exc).splitlines() or [""])[0][:200])
    body = error_body("The horde's database is unavailable; try again shortly", "DatabaseUnavailable")
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error: %s", describe(exc))
    return JSONResponse(error_body("Internal Server Error", "InternalServerError"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HordeError, _horde_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PoolTimeout, _overloaded)
    for database_error in (DBAPIError, *_CONNECTION_ERRORS, pg.InterfaceError):
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(Exception, _unexpected)
