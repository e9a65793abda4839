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
from horde.server.images.codec import Header, ImageError, TooLarge, decode_base64, image_header, reencode_webp


@dataclass(frozen=True)
class SourcePolicy:
    allow_private: bool
    timeout: float
    max_bytes: int


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches on hosts that translate it: IPv4-mapped, NAT64,
    6to4 and IPv4-compatible forms carry one (`ip.is_global` judges the IPv6 prefix, not it)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _NAT64_LOCAL or (ip in _COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _public(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None:
            return False  # a tunnel whose far end we cannot judge
        ip = embedded_ipv4(ip) or ip
    return ip.is_global and not ip.is_multicast  # is_global also excludes 100.64/10 (metadata services)


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


@dataclass(frozen=True)
class PinnedURL:
    """A URL rewritten to the address the policy checked, with what keeps HTTP and TLS working."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


async def pin(url: str, policy: SourcePolicy, *, rc: RC = RC.SourceImageUrlInvalid) -> PinnedURL:
    """Resolve and check `url` once, and aim the request at that very address (no DNS rebinding)."""
    address = await resolve_checked(url, policy, rc=rc)
    pinned, host = _pinned(url, address)
    return PinnedURL(pinned, {"Host": host}, {"sni_hostname": urlsplit(url).hostname or ""})


async def fetch_url(client: httpx.AsyncClient, url: str, policy: SourcePolicy) -> bytes:
    """GET `url` at its checked address, at most `policy.max_bytes`, without redirects."""
    target = await pin(url, policy)
    try:
        async with (
            asyncio.timeout(policy.timeout),
            client.stream(
                "GET",
                target.url,
                headers=target.headers,
                extensions=target.extensions,
                timeout=policy.timeout,
                follow_redirects=False,
            ) as response,
        ):
            if response.status_code != 200:
                raise HordeError(RC.SourceImageUnreadable, f"The source URL answered {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > policy.max_bytes:
                    raise HordeError(RC.SourceImageSizeExceeded, "The source image is too large")
                chunks.append(chunk)
    except TimeoutError as exc:  # one deadline for the whole fetch: httpx's are per read
        raise HordeError(RC.SourceImageUnreadable, f"The source URL took over {policy.timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise HordeError(RC.SourceImageUnreadable, "The source URL could not be read") from exc
    return b"".join(chunks)


async def _raw_source(client: httpx.AsyncClient, value: str, policy: SourcePolicy) -> bytes:
    if is_url(value):
        return await fetch_url(client, value, policy)
    try:
        raw = decode_base64(value)
    except ImageError as exc:
        raise HordeError(RC.ImageValidationFailed, "The source image is not valid base64") from exc
    if len(raw) > policy.max_bytes:
        raise HordeError(RC.SourceImageSizeExceeded, "The source image is too large")
    return raw


def _image_error(exc: ImageError) -> HordeError:
    if isinstance(exc, TooLarge):
        return HordeError(RC.SourceImageResolutionExceeded, f"The source image is {exc}")
    return HordeError(RC.ImageValidationFailed, "The source is not a readable image")


async def load_source(
    client: httpx.AsyncClient, value: str, policy: SourcePolicy, *, owner: object = None
) -> tuple[bytes, int, int]:
    """A source image (base64 or URL) of at most 3072x3072, re-encoded as WebP: (bytes, width, height)."""
    raw = await _raw_source(client, value, policy)
    try:
        return await reencode_webp(raw, owner=owner)
    except ImageError as exc:
        raise _image_error(exc) from exc


async def load_source_as_is(
    client: httpx.AsyncClient, value: str, policy: SourcePolicy, *, owner: object = None
) -> tuple[bytes, Header]:
    """A source image (base64 or URL) kept as it came, with its header: nothing is decoded (the
    worker decodes it), so it may be as large as the header check of its kind allows."""
    raw = await _raw_source(client, value, policy)
    try:
        return raw, await image_header(raw, owner=owner)
    except ImageError as exc:
        raise _image_error(exc) from exc
