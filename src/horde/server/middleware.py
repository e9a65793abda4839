"""Pure ASGI middleware at the boundary: CORS for browser clients, the NUL-byte guard, field masks."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from horde.server.kit import fieldmask

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


_LARGE_BODY = 32 * 1024 * 1024  # requests and results that carry base64 images or long prompts
_SMALL_BODY = 1024 * 1024
_BODY_LIMITS = (
    (re.compile(r"^/api/v2/(generate/(text/)?async|interrogate/async)$"), _LARGE_BODY),
    (re.compile(r"^/api/v2/(generate|generate/text|interrogate)/submit$"), _LARGE_BODY),
    (re.compile(r"^/register$"), 4096),
)
_STREAMED = re.compile(r"^/objects/")  # binary uploads, read and sized by their route


def body_limit(path: str) -> int:
    """The largest body a route takes: every route has one, most a small one."""
    for pattern, limit in _BODY_LIMITS:
        if pattern.match(path):
            return limit
    return _SMALL_BODY


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyGuardMiddleware:
    """Refuse NUL bytes (400 NulByteInPayload) and bodies over the route's limit before any parsing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await _answer(send, 400, {"message": "The URL contains a NUL byte", "rc": "NulByteInPayload"})
            return
        path = scope["path"]
        if scope["method"] not in ("POST", "PUT", "PATCH", "DELETE") or _STREAMED.match(path):
            await self.app(scope, receive, send)
            return
        limit = body_limit(path)
        declared = _declared_length(scope)
        body = None if declared is not None and declared > limit else await _read(receive, limit)
        if body is None:
            await _answer(
                send, 413, {"message": f"Payload too large (at most {limit} bytes)", "rc": "PayloadTooLarge"}
            )
        elif b"\\u0000" in body or b"\x00" in body:
            await _answer(send, 400, {"message": "Payload contains a NUL byte", "rc": "NulByteInPayload"})
        else:
            await self.app(scope, _replay(body, receive), send)


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is larger than `limit` (b"" when the client left)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
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


# the reference marshals (and masks) every v2 answer but the heartbeat's; /dev is this horde's own
_MASKED = re.compile(r"^/api/v2/(?!status/heartbeat$|dev/)")


def _mask_header(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"x-fields":
            return value if value.strip() else None
    return None


class FieldMaskMiddleware:
    """`X-Fields` masks on successful JSON answers of the v2 API, applied to the final body (after any
    cache); a request without the header costs one scan of its headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = _mask_header(scope) if scope["type"] == "http" else None
        if header is None or not _MASKED.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:  # parsed before the handler runs, so a malformed mask changes nothing
            mask = fieldmask.parse(header.decode("latin-1"))
        except fieldmask.MaskParseError as exc:
            await _answer(send, 400, {"message": f"Mask parse error: {exc}"})
            return
        await self.app(scope, receive, _MaskingSend(mask, send))


class _MaskingSend:
    """Holds a successful JSON answer until its last chunk, then sends it masked."""

    def __init__(self, mask: fieldmask.Mask, send: Send) -> None:
        self.mask = mask
        self.send = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if 200 <= message["status"] < 300 and _is_json(message):
                self.start = message
                return
        elif message["type"] == "http.response.body" and self.start is not None:
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._flush()
            return
        await self.send(message)

    async def _flush(self) -> None:
        assert self.start is not None
        try:
            body = fieldmask.apply(self.mask, json.loads(b"".join(self.chunks)))
        except fieldmask.MaskError as exc:
            await _answer(self.send, 400, {"message": f"Mask error: {exc}"})
            return
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = [(k, v) for k, v in self.start.get("headers", []) if k != b"content-length"]
        headers.append((b"content-length", str(len(raw)).encode()))
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": raw})


def _is_json(start: Message) -> bool:
    return any(
        k == b"content-type" and v.startswith(b"application/json") for k, v in start.get("headers", [])
    )
