"""The client's IP address, built once per request from the socket peer and the trusted proxies.

`X-Forwarded-For` is believed only when the peer is a trusted proxy (`HORDE_TRUSTED_PROXIES`), and
then only up to the first hop that is not one: the hops to its left were written by the client. Uvicorn's
own proxy-header rewrite is off (`serve.py`), so `scope["client"]` stays the socket peer. Everything
that needs the client's IP (rate limits, IP-bound checks) reads `client_ip(scope)`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

_KEY = "horde.client_ip"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_ip(scope: Scope) -> str:
    """The address of the socket's far end (a proxy, when there is one)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def client_ip(scope: Scope) -> str:
    """The client's IP as `ClientIPMiddleware` built it (the peer when the middleware is absent)."""
    ip = scope.get(_KEY)
    return ip if isinstance(ip, str) else peer_ip(scope)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(e, strict=False) for e in entries)

    def trusts(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client_of(self, peer: str, forwarded_for: list[str]) -> str:
        """The client behind `peer`, from the `X-Forwarded-For` hops appended by trusted proxies."""
        if not self.trusts(_address(peer)):
            return peer
        client = peer
        for hop in reversed(forwarded_for):
            address = _address(hop)
            if address is None:
                break
            client = str(address)
            if not self.trusts(address):
                break
        return client


def _forwarded_for(scope: Scope) -> list[str]:
    hops: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            hops.extend(part for part in value.decode("latin-1").split(",") if part.strip())
    return hops


FORWARDING_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip", b"proxied-for")


def is_forwarded(scope: Scope) -> bool:
    """Whether a proxy says it relays this request for someone else."""
    return any(name in FORWARDING_HEADERS for name, _ in scope.get("headers", []))


class ClientIPMiddleware:
    """Builds the client's IP once, first thing, for every layer after it."""

    def __init__(self, app: ASGIApp, *, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = peer_ip(scope)
            scope[_KEY] = (
                self.proxies.client_of(peer, _forwarded_for(scope)) if self.proxies.networks else peer
            )
        await self.app(scope, receive, send)


ProxyCheck = Callable[[Scope, str], Awaitable[bool]]


class ProxiedForMiddleware:
    """A service account's proxy (SEMANTICS.md 2): with a known proxy passkey in `Proxy-Authorization`,
    the address in `Proxied-For` is the client's for everything after this layer (limits, timeouts)."""

    def __init__(self, app: ASGIApp, *, check: ProxyCheck) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers", []))
            passkey = headers.get(b"proxy-authorization", b"").decode("latin-1").strip()
            passkey = passkey.removeprefix("Bearer ").strip()
            proxied = _address(headers.get(b"proxied-for", b"").decode("latin-1"))
            if passkey and proxied is not None and await self.check(scope, passkey):
                scope[_KEY] = str(proxied)
        await self.app(scope, receive, send)
