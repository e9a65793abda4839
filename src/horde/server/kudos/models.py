"""Kudos postings and the per-user balances folded from them (ADR 0004)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Uuid, text
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
    folded: Mapped[bool] = mapped_column(Boolean, default=False)  # counted in kudos_balances yet

    __table_args__ = (
        Index(
            "ix_kudos_postings_unfolded",
            "user_id",
            postgresql_where=text("NOT folded"),
            sqlite_where=text("NOT folded"),
        ),
    )


class KudosBalance(Base):
    """A user's folded balance: with the user's unfolded postings it makes the balance (ADR 0004)."""

    __tablename__ = "kudos_balances"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    # evaluating kudos (escrowed rewards of an untrusted owner, SEMANTICS.md 4.5; ADR 0023)
    escrow: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class KudosHold(Base):
    """Kudos reserved for a queued request (SEMANTICS.md 4.4 upfront kudos): what the payer may not
    spend elsewhere until the request is settled (each job's charge consumes it) or released."""

    __tablename__ = "kudos_holds"

    ref: Mapped[str] = mapped_column(String(64), primary_key=True)  # "upfront:<request id>"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # hundredths still held
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
