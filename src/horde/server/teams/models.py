"""The teams table and its insert-only attribution events (folded into the team's figures, ADR 0016)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base, UTCDateTime


class Team(Base):
    """A team; its figures are the folded sum of its events, never written by a completion."""

    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    name_lower: Mapped[str] = mapped_column(String(100), unique=True)
    info: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)  # creator
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    contributions: Mapped[float] = mapped_column(Float, default=0.0)  # megapixelsteps
    fulfilments: Mapped[int] = mapped_column(BigInteger, default=0)
    kudos: Mapped[int] = mapped_column(BigInteger, default=0)  # hundredths
    uptime: Mapped[int] = mapped_column(BigInteger, default=0)  # seconds


class TeamEvent(Base):
    """What one settlement (or uptime tick) adds to a team: inserted, folded, then deleted.

    No foreign key: an event for a team deleted meanwhile is folded into nothing."""

    __tablename__ = "team_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kudos: Mapped[int] = mapped_column(BigInteger, default=0)  # hundredths
    contributions: Mapped[float] = mapped_column(Float, default=0.0)
    fulfilments: Mapped[int] = mapped_column(Integer, default=0)
    uptime: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
