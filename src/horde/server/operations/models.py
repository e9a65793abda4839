"""The countermeasures' tables: IP timeouts and the horde's modes, shared by every node."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base


class TimeoutKind(StrEnum):
    BLOCK = "block"  # a moderator's IP or CIDR timeout (`/operations/ipaddr`)
    DIRECT = "direct"  # an address timed out for abuse (repeated corrupt prompts)
    WORKER = "worker"  # a worker's address blocked by a moderator: refuses pops only


class IpTimeout(Base):
    """An address or range in timeout until `expires_at` (epoch seconds); IPv6 addresses as their /64."""

    __tablename__ = "ip_timeouts"

    network: Mapped[str] = mapped_column(String(64), primary_key=True)  # normalised CIDR
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    # abuse hits counted for the growing timeout, and when that count lapses (DIRECT rows only)
    offences: Mapped[int] = mapped_column(Integer, default=0)
    offences_until: Mapped[float] = mapped_column(Float, default=0.0)


class HordeMode(Base):
    """One of the horde's modes and whether it is on; no row means off."""

    __tablename__ = "horde_modes"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[float] = mapped_column(Float)
    changed_by: Mapped[int] = mapped_column(Integer)
