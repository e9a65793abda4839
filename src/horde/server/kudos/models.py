"""Kudos postings and the per-user balances folded from them (ADR 0004)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base, UTCDateTime


class KudosPosting(Base):
    """One signed movement on one account; the postings of one event sum to zero."""

    __tablename__ = "kudos_postings"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    account: Mapped[str] = mapped_column(String(40))  # "user" or "system:<name>"
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # hundredths
    reason: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KudosBalance(Base):
    """A user's spendable balance, kept equal to the sum of its postings (inline, except hot accounts)."""

    __tablename__ = "kudos_balances"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
