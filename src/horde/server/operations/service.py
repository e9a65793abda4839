"""IP timeouts, blocked worker addresses and the horde's modes (SEMANTICS.md 1.12, 5, 8).

Invariants: the rows are the truth and every node's `Guard` is a view at most `refresh` old; a
timeout is stored under its normalised range (an IPv6 client's /64), so one range has one row per kind;
only the routes' access rows decide who may change them.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import HordeModes, HordeModesInput, IPTimeout, SimpleResponse
from horde.contract.rc import RC
from horde.server import access
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.jobs.requests import shrink_queued
from horde.server.operations.guard import Modes, horde_modes, ip_timeouts, read_modes
from horde.server.operations.models import TimeoutKind
from horde.server.operations.networks import Network, client_network, parse_timeout_target
from horde.server.state import Horde
from horde.server.users.principal import Principal
from horde.server.workers.details import worker_ipaddr

ABUSE_MEMORY = 24 * 3600.0  # repeated abuse counts for a day after the last hit
ABUSE_STEP = 3 * 60.0  # each timeout is (2s + 1) steps, s the hits counted (SEMANTICS.md 5)
_MODE_FIELDS = {"maintenance_mode": "maintenance", "invite_only_mode": "invite_only", "raid_mode": "raid"}


def _upsert(conn: AsyncConnection):  # type: ignore[no-untyped-def]
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


async def _put_timeout(
    conn: AsyncConnection, horde: Horde, *, network: Network, kind: TimeoutKind, seconds: float
) -> None:
    expires_at = horde.clock.now() + seconds
    statement = _upsert(conn)(ip_timeouts).values(network=str(network), kind=kind, expires_at=expires_at)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["network", "kind"], set_={"expires_at": statement.excluded.expires_at}
        )
    )
    after_commit(conn, horde.guard.forget)


async def _delete_timeouts(conn: AsyncConnection, horde: Horde, *, network: Network, kinds: set[str]) -> None:
    await conn.execute(
        delete(ip_timeouts).where(ip_timeouts.c.network == str(network), ip_timeouts.c.kind.in_(kinds))
    )
    after_commit(conn, horde.guard.forget)


async def _live(conn: AsyncConnection, horde: Horde, kinds: set[str]) -> list[tuple[Network, str, int]]:
    now = horde.clock.now()
    rows = await conn.execute(
        select(ip_timeouts.c.network, ip_timeouts.c.kind, ip_timeouts.c.expires_at)
        .where(ip_timeouts.c.expires_at > now, ip_timeouts.c.kind.in_(kinds))
        .order_by(ip_timeouts.c.expires_at.desc())
    )
    return [(ipaddress.ip_network(net), kind, int(expires - now)) for net, kind, expires in rows]


async def list_timeouts(conn: AsyncConnection, *, horde: Horde) -> list[IPTimeout]:
    """Every moderator's IP and CIDR timeout still running."""
    live = await _live(conn, horde, {TimeoutKind.BLOCK})
    return [IPTimeout(ipaddr=str(net), seconds=seconds) for net, _, seconds in live]


async def find_timeouts(conn: AsyncConnection, *, horde: Horde, ipaddr: str) -> list[IPTimeout]:
    """The running timeouts that cover `ipaddr`: moderators' ranges and its own abuse timeout."""
    target = parse_timeout_target(ipaddr)
    live = await _live(conn, horde, {TimeoutKind.BLOCK, TimeoutKind.DIRECT})
    return [
        IPTimeout(ipaddr=str(net), seconds=seconds)
        for net, kind, seconds in live
        if net.version == target.version
        and (target.subnet_of(net) if kind == TimeoutKind.BLOCK else net == target)  # type: ignore[arg-type]
    ]


async def add_timeout(conn: AsyncConnection, *, horde: Horde, ipaddr: str, hours: int) -> SimpleResponse:
    """Time out an IP or CIDR for `hours` (a running timeout of the same range is replaced)."""
    network = parse_timeout_target(ipaddr)
    await _put_timeout(conn, horde, network=network, kind=TimeoutKind.BLOCK, seconds=hours * 3600.0)
    return SimpleResponse()


async def delete_timeout(conn: AsyncConnection, *, horde: Horde, ipaddr: str) -> SimpleResponse:
    """Lift the moderator's timeout of a range and the abuse timeout of that address."""
    network = parse_timeout_target(ipaddr)
    await _delete_timeouts(conn, horde, network=network, kinds={TimeoutKind.BLOCK, TimeoutKind.DIRECT})
    return SimpleResponse()


async def _worker_network(conn: AsyncConnection, raw_id: str) -> Network:
    network = client_network(await worker_ipaddr(conn, raw_id=raw_id))
    if network is None:
        raise HordeError(RC.BadRequest, "This worker has no IP address to block")
    return network


async def block_worker_ip(
    conn: AsyncConnection, *, horde: Horde, worker_id: str, days: int
) -> SimpleResponse:
    """Refuse pops from the worker's address (its /64 for IPv6) for `days`."""
    network = await _worker_network(conn, worker_id)
    await _put_timeout(conn, horde, network=network, kind=TimeoutKind.WORKER, seconds=days * 86400.0)
    return SimpleResponse()


async def unblock_worker_ip(conn: AsyncConnection, *, horde: Horde, worker_id: str) -> SimpleResponse:
    """Lift the block of the worker's address."""
    network = await _worker_network(conn, worker_id)
    await _delete_timeouts(conn, horde, network=network, kinds={TimeoutKind.WORKER})
    return SimpleResponse()


async def time_out_abuser(conn: AsyncConnection, *, horde: Horde, ipaddr: str) -> int:
    """Count one more abuse (a corrupt prompt) from `ipaddr` and time it out for (2s+1)*3 minutes,
    s the hits of the last day including this one; returns the timeout's seconds (0: not an IP)."""
    network = client_network(ipaddr)
    if network is None:
        return 0
    now = horde.clock.now()
    row = (
        await conn.execute(
            select(ip_timeouts.c.offences, ip_timeouts.c.offences_until).where(
                ip_timeouts.c.network == str(network), ip_timeouts.c.kind == TimeoutKind.DIRECT
            )
        )
    ).first()
    hits = (row.offences if row is not None and row.offences_until > now else 0) + 1
    seconds = (2 * hits + 1) * ABUSE_STEP
    values = {"expires_at": now + seconds, "offences": hits, "offences_until": now + ABUSE_MEMORY}
    statement = _upsert(conn)(ip_timeouts).values(network=str(network), kind=TimeoutKind.DIRECT, **values)
    await conn.execute(statement.on_conflict_do_update(index_elements=["network", "kind"], set_=values))
    after_commit(conn, horde.guard.forget)
    return int(seconds)


async def current_modes(horde: Horde) -> Modes:
    return (await horde.guard.fresh()).modes


def _modes_body(modes: Modes, *, moderator: bool) -> HordeModes:
    raid = modes.raid if moderator else None
    return HordeModes(maintenance_mode=modes.maintenance, invite_only_mode=modes.invite_only, raid_mode=raid)


async def get_modes(horde: Horde, *, viewer: Principal | None) -> HordeModes:
    """The horde's modes; `raid_mode` only for moderators (the access row keeps other keys out)."""
    return _modes_body(await current_modes(horde), moderator=viewer is not None)


async def set_modes(
    conn: AsyncConnection, *, horde: Horde, actor: Principal, body: HordeModesInput
) -> HordeModes:
    """Switch modes on or off; turning maintenance on empties the queue (jobs workers hold finish)."""
    changes = {_MODE_FIELDS[f]: v for f, v in body.model_dump(by_alias=False).items() if v is not None}
    if not changes:
        raise HordeError(RC.NoHordeModSelected, "No horde mode was selected")
    access.admit(access.PUT_MODES, actor, fields=[f for f in _MODE_FIELDS if getattr(body, f) is not None])
    now = horde.clock.now()
    for name, enabled in changes.items():
        statement = _upsert(conn)(horde_modes).values(
            name=name, enabled=enabled, changed_at=now, changed_by=actor.id
        )
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["name"], set_={"enabled": enabled, "changed_at": now, "changed_by": actor.id}
            )
        )
    if changes.get("maintenance"):
        await shrink_queued(conn, horde=horde)
    after_commit(conn, horde.guard.forget)
    return _modes_body(await read_modes(conn), moderator=True)


async def time_out_corrupt_prompt(horde: Horde, ipaddr: str) -> None:
    """The corrupt-prompt hook (`Horde.corrupt_prompt_hooks`, filters/screen.py): one more abuse from
    `ipaddr`, timed out in a unit of its own."""
    async with horde.db.unit() as conn:
        await time_out_abuser(conn, horde=horde, ipaddr=ipaddr)
