"""IP reputation: is an address one the horde should not trust (a VPN, a proxy, a known abuser)?

Pluggable: `HORDE_IP_REPUTATION` names a `module:factory` called with the settings and the clock that
returns an `IpReputation`. The default is a list the operator maintains (`HORDE_UNSAFE_IPS_FILE`: one
address or CIDR a line, `#` comments), re-read when the file changes; no outside service is asked.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
import os
from typing import Protocol

from horde.server.config import Settings
from horde.server.kit.clock import Clock
from horde.server.operations.networks import Network, parse_address

log = logging.getLogger(__name__)


class IpReputation(Protocol):
    async def is_unsafe(self, ip: str) -> bool: ...


def _parse(text: str, path: str) -> tuple[Network, ...]:
    networks = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            networks.append(ipaddress.ip_network(line, strict=False))
        except ValueError:
            log.warning("%s:%d: '%s' is not an IP address or CIDR; skipped", path, number, line)
    return tuple(networks)


class LocalList:
    """Unsafe addresses and ranges from the operator's file, checked for changes every `recheck` s."""

    def __init__(self, path: str, clock: Clock, *, recheck: float = 5.0) -> None:
        self.path = path
        self._clock = clock
        self._recheck = recheck
        self._checked_at = float("-inf")
        self._mtime: float | None = None
        self.networks: tuple[Network, ...] = ()

    def _read(self) -> tuple[float | None, str]:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            return None, ""
        if mtime == self._mtime:
            return mtime, ""
        with open(self.path, encoding="utf-8", errors="replace") as file:
            return mtime, file.read()

    async def _refresh(self) -> None:
        self._checked_at = self._clock.now()
        mtime, text = await asyncio.to_thread(self._read)
        if mtime != self._mtime:
            self._mtime = mtime
            self.networks = _parse(text, self.path) if mtime is not None else ()

    async def is_unsafe(self, ip: str) -> bool:
        if not self.path:
            return False
        if self._clock.now() - self._checked_at >= self._recheck:
            await self._refresh()
        address = parse_address(ip)
        return address is not None and any(address in network for network in self.networks)


def load_reputation(settings: Settings, clock: Clock) -> IpReputation:
    """The configured lookup: the operator's factory, else the local list."""
    if settings.ip_reputation:
        module, _, name = settings.ip_reputation.partition(":")
        factory = getattr(importlib.import_module(module), name)
        reputation: IpReputation = factory(settings, clock)
        return reputation
    return LocalList(settings.unsafe_ips_file, clock)
