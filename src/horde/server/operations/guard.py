"""The node's view of the countermeasures: timeouts and modes, read from the database at most once a
`refresh` (1 s), so the hot paths (generate, pop) check them without a query of their own.

A change made on this node is seen at once (`forget` after its commit); one made on another node
within `refresh`. A refresh that fails keeps the last view (the database being down fails the request
elsewhere anyway).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server.db import Database
from horde.server.errors import HordeError
from horde.server.kit.clock import Clock
from horde.server.kit.orm import table
from horde.server.operations.models import HordeMode, IpTimeout, TimeoutKind
from horde.server.operations.networks import Network, client_network

ip_timeouts = table(IpTimeout)
horde_modes = table(HordeMode)
GENERATE_KINDS = frozenset({TimeoutKind.BLOCK, TimeoutKind.DIRECT})
POP_KINDS = frozenset(TimeoutKind)


@dataclass(frozen=True, slots=True)
class Modes:
    maintenance: bool = False
    invite_only: bool = False
    raid: bool = False


@dataclass(frozen=True, slots=True)
class Timeout:
    network: Network
    kind: TimeoutKind
    expires_at: float


async def read_modes(conn: AsyncConnection) -> Modes:
    """The modes as the database has them, on the caller's connection (inside its transaction)."""
    rows = await conn.execute(select(horde_modes.c.name, horde_modes.c.enabled))
    enabled = {name: bool(on) for name, on in rows}
    return Modes(**{name: enabled.get(name, False) for name in Modes.__slots__})


class _View:
    """Timeouts keyed for lookup: a client's own range by its exact key, wider ranges scanned."""

    def __init__(self, timeouts: list[Timeout]) -> None:
        self.exact: dict[Network, list[Timeout]] = {}
        self.ranges: list[Timeout] = []
        for timeout in timeouts:
            prefix = timeout.network.prefixlen
            if prefix == (32 if timeout.network.version == 4 else 64):
                self.exact.setdefault(timeout.network, []).append(timeout)
            else:
                self.ranges.append(timeout)

    def matching(self, network: Network) -> list[Timeout]:
        found = list(self.exact.get(network, ()))
        for timeout in self.ranges:
            if network.version == timeout.network.version and network.subnet_of(timeout.network):  # type: ignore[arg-type]
                found.append(timeout)
        return found


class Guard:
    def __init__(self, db: Database, clock: Clock, *, refresh: float = 1.0) -> None:
        self._db = db
        self._clock = clock
        self._refresh = refresh
        self._loaded_at = float("-inf")
        self._view = _View([])
        self.modes = Modes()
        self._loading: asyncio.Task[None] | None = None

    def forget(self) -> None:
        """This node changed a countermeasure: the next check reads the database."""
        self._loaded_at = float("-inf")

    async def fresh(self) -> Guard:
        """This guard, refreshed from the database when its view is older than `refresh`."""
        if self._clock.now() - self._loaded_at >= self._refresh:
            if self._loading is None or self._loading.done():
                self._loading = asyncio.ensure_future(self._load())
            await asyncio.shield(self._loading)
        return self

    async def _load(self) -> None:
        now = self._clock.now()
        async with self._db.autocommit() as conn:
            rows = (await conn.execute(select(ip_timeouts).where(ip_timeouts.c.expires_at > now))).all()
            modes = await read_modes(conn)
        self._view = _View(
            [Timeout(ipaddress.ip_network(r.network), TimeoutKind(r.kind), r.expires_at) for r in rows]
        )
        self.modes = modes
        self._loaded_at = now

    def seconds_left(self, ip: str, kinds: Collection[TimeoutKind] = GENERATE_KINDS) -> int:
        """How long `ip` stays timed out (0: it is not), among the timeouts of `kinds`."""
        if not (self._view.exact or self._view.ranges):  # the common case: nothing timed out
            return 0
        network = client_network(ip)
        if network is None:
            return 0
        now = self._clock.now()
        left = [t.expires_at - now for t in self._view.matching(network) if t.kind in kinds]
        return max(0, int(max(left, default=0)))

    async def check_client(self, ip: str) -> None:
        """403 TimeoutIP when a client's address is timed out (generate)."""
        seconds = (await self.fresh()).seconds_left(ip, GENERATE_KINDS)
        if seconds:
            raise _refuse(seconds)

    async def check_worker(self, ip: str) -> None:
        """403 TimeoutIP when a worker's address is timed out or blocked (pop)."""
        seconds = (await self.fresh()).seconds_left(ip, POP_KINDS)
        if seconds:
            raise _refuse(seconds)

    async def check_maintenance(self) -> None:
        """400 MaintenanceMode while the horde takes no new requests."""
        if (await self.fresh()).modes.maintenance:
            raise HordeError(
                RC.MaintenanceMode,
                "This horde is in maintenance mode and accepts no new requests for now; "
                "requests already queued will finish. Please try again later.",
            )


def _refuse(seconds: int) -> HordeError:
    return HordeError(
        RC.TimeoutIP,
        f"Due to abuse prevention, your IP address has been put into timeout for {seconds} more seconds. "
        "Please try again later, or contact the horde's moderators if you believe this is an error.",
    )
