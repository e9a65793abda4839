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
        methods = ("POST", "PUT", "PATCH", "DELETE")
        if scope["type"] != "http" or scope["method"] not in methods or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)  # object uploads are binary and sized by their route
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                for m in _error(413, {"message": "Payload too large", "rc": "PayloadTooLarge"}):
                    await send(m)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b"\\u0000" in body or b"\x00" in body:
            body_msg = {"message": "Payload contains a NUL byte", "rc": "NulByteInPayload"}
            for m in _error(400, body_msg):
                await send(m)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
