"""Pure ASGI middleware at the boundary: CORS for browser clients and the NUL-byte guard."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = (
    "Accept, Apikey, Authorization, Client-Agent, Client_Agent, Content-Type, Idempotency-Key, "
    "Origin, Proxied-For, Proxy-Authorization, X-Fields, X-Requested-With, Horde-Wait"
)
_CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"*"),
]
_PREFLIGHT_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
    (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
    (b"access-control-max-age", b"600"),
    (b"content-length", b"0"),
]


class CORSMiddleware:
    """Every response carries `Access-Control-Allow-Origin: *`; preflights answer 200 directly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 200, "headers": _PREFLIGHT_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_CORS_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _error(status: int, body: dict[str, Any]) -> tuple[Message, Message]:
    raw = json.dumps(body).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
    }
    return start, {"type": "http.response.body", "body": raw}


class BodyGuardMiddleware:
    """Refuse NUL bytes (400 NulByteInPayload) and oversized bodies before any parsing."""

    def __init__(self, app: ASGIApp, *, max_body: int = 32 * 1024 * 1024) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await _answer(send, 400, {"message": "The URL contains a NUL byte", "rc": "NulByteInPayload"})
            return
        methods = ("POST", "PUT", "PATCH", "DELETE")
        if scope["method"] not in methods or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)  # object uploads are binary and sized by their route
            return
        body = await self._read(receive)
        if body is None:
            await _answer(send, 413, {"message": "Payload too large", "rc": "PayloadTooLarge"})
        elif b"\\u0000" in body or b"\x00" in body:
            await _answer(send, 400, {"message": "Payload contains a NUL byte", "rc": "NulByteInPayload"})
        else:
            await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than allowed (or the client left)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    for message in _error(status, body):
        await send(message)
