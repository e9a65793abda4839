"""Completion events and the time buckets folded from them (ADR 0021)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base, UTCDateTime


class StatEvent(Base):
    """One completed job: inserted by the completion, folded into `stat_buckets` and `stat_totals`,
    then deleted (no completion updates a row every completion updates)."""

    __tablename__ = "stat_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    model: Mapped[str] = mapped_column(String(255))
    things: Mapped[float] = mapped_column(Float)  # megapixelsteps (image) or tokens (text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StatBucket(Base):
    """Jobs done per kind and model in one minute, hour or day (`start`: epoch seconds of its start);
    pruned once no window reaches it."""

    __tablename__ = "stat_buckets"

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    grain: Mapped[int] = mapped_column(Integer, primary_key=True)  # seconds: 60, 3600 or 86400
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    things: Mapped[float] = mapped_column(Float, default=0.0)


class StatTotal(Base):
    """Jobs done per kind and model, ever."""

    __tablename__ = "stat_totals"

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    things: Mapped[float] = mapped_column(Float, default=0.0)
