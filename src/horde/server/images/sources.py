"""Source images given as base64 or http(s) URL, under a destination policy.

A URL is resolved once; every address must be public (no loopback, private, link-local, multicast or
reserved ranges) unless `HORDE_ALLOW_PRIVATE_SOURCE_URLS` is set, and the request goes to the address
that was checked, with no redirects followed, so DNS rebinding and redirects cannot reach inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.images.codec import ImageError, decode_base64, reencode_webp


@dataclass(frozen=True)
class SourcePolicy:
    allow_private: bool
    timeout: float
    max_bytes: int


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
    )  # fmt: skip


async def resolve_checked(url: str, policy: SourcePolicy, *, rc: RC = RC.SourceImageUrlInvalid) -> str:
    """The address to connect to for `url`, after the destination policy; HordeError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HordeError(rc, "The URL must be http(s) with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HordeError(rc, "The URL's host cannot be resolved") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise HordeError(rc, "The URL's host cannot be resolved")
    if not policy.allow_private and not all(_public(a) for a in addresses):
        raise HordeError(rc, "The URL points at a private or local address")
    return addresses[0]


def _pinned(url: str, address: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc)), parts.netloc


async def fetch_url(client: httpx.AsyncClient, url: str, policy: SourcePolicy) -> bytes:
    """GET `url` at its checked address, at most `policy.max_bytes`, without redirects."""
    address = await resolve_checked(url, policy)
    pinned, host = _pinned(url, address)
    hostname = urlsplit(url).hostname or ""
    try:
        async with client.stream(
            "GET",
            pinned,
            headers={"Host": host},
            extensions={"sni_hostname": hostname},
            timeout=policy.timeout,
            follow_redirects=False,
        ) as response:
            if response.status_code != 200:
                raise HordeError(RC.SourceImageUnreadable, f"The source URL answered {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > policy.max_bytes:
                    raise HordeError(RC.SourceImageSizeExceeded, "The source image is too large")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise HordeError(RC.SourceImageUnreadable, "The source URL could not be read") from exc
    return b"".join(chunks)


async def load_source(
    client: httpx.AsyncClient, value: str, policy: SourcePolicy, *, max_side: int = 3072
) -> tuple[bytes, int, int]:
    """A source image (base64 or URL) re-encoded as WebP: (bytes, width, height)."""
    if is_url(value):
        raw = await fetch_url(client, value, policy)
    else:
        try:
            raw = decode_base64(value)
        except ImageError as exc:
            raise HordeError(RC.ImageValidationFailed, "The source image is not valid base64") from exc
        if len(raw) > policy.max_bytes:
            raise HordeError(RC.SourceImageSizeExceeded, "The source image is too large")
    try:
        return await reencode_webp(raw, max_side=max_side)
    except ImageError as exc:
        if "larger than" in str(exc):
            raise HordeError(RC.SourceImageResolutionExceeded, f"The source image is {exc}") from exc
        raise HordeError(RC.ImageValidationFailed, "The source is not a readable image") from exc
