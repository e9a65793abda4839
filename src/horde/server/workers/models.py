"""The workers table: one row per worker program of any kind, told apart by a `kind` column."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base, JSONDoc, UTCDateTime


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(10), index=True)
    name: Mapped[str] = mapped_column(String(100))
    name_lower: Mapped[str] = mapped_column(String(100), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_check_in: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ipaddr: Mapped[str] = mapped_column(String(64), default="")
    bridge_agent: Mapped[str] = mapped_column(String(1000), default="")
    threads: Mapped[int] = mapped_column(Integer, default=1)
    nsfw: Mapped[bool] = mapped_column(Boolean, default=False)
    info: Mapped[str | None] = mapped_column(Text, nullable=True)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    maintenance_msg: Mapped[str | None] = mapped_column(String(300), nullable=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    models: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    # per-kind check-in fields (max_pixels, allow_*, max_length, forms, blacklist, ...)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    fulfilments: Mapped[int] = mapped_column(Integer, default=0)
    kudos_generated: Mapped[int] = mapped_column(BigInteger, default=0)  # hundredths
    kudos_uptime: Mapped[int] = mapped_column(BigInteger, default=0)  # hundredths
    things: Mapped[float] = mapped_column(Float, default=0.0)  # megapixelsteps, tokens or forms
    uptime: Mapped[int] = mapped_column(Integer, default=0)  # seconds
    uncompleted_jobs: Mapped[int] = mapped_column(Integer, default=0)
    aborted_jobs: Mapped[int] = mapped_column(Integer, default=0)
    speed: Mapped[float] = mapped_column(Float, default=1.0)  # things per second, moving average
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), nullable=True, index=True
    )


class WorkerCheckIn(Base):
    """One written check-in of a worker: inserted beside the check-in, folded into uptime and its
    rewards by the scheduler, then deleted (ADR 0023). No foreign key: a deleted worker's check-ins
    fold into nothing."""

    __tablename__ = "worker_checkins"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    worker_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    at: Mapped[float] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean)  # not paused, not in maintenance: uptime accrues
    reward: Mapped[int] = mapped_column(BigInteger)  # hundredths per uptime period at this check-in


class WorkerUptime(Base):
    """The uptime folder's cursor per worker: when it was last seen and the seconds accrued toward its
    next uptime reward. Written only by the folder."""

    __tablename__ = "worker_uptime"

    worker_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workers.id", ondelete="CASCADE"), primary_key=True
    )
    last_seen: Mapped[float] = mapped_column(Float)
    accrued: Mapped[float] = mapped_column(Float, default=0.0)
