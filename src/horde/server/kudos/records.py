"""The kudos domain's records of movements other than postings: transfers (for idempotency and the
transfer-back window) and the monthly grants (amount and last payment). ADR 0015."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base, UTCDateTime


class KudosTransfer(Base):
    """One applied transfer; its postings carry `ref = "transfer:<id>"`."""

    __tablename__ = "kudos_transfers"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sender_id: Mapped[int] = mapped_column(Integer)
    recipient_id: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)  # whole kudos, as the API takes them
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("sender_id", "idempotency_key"),  # NULL keys never collide
        Index("ix_kudos_transfers_pair", "sender_id", "recipient_id", "created_at"),
    )


class MonthlyKudos(Base):
    """What a user receives each month and when it was last paid (SEMANTICS.md 4.6)."""

    __tablename__ = "kudos_monthly"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # whole kudos
    last_received: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
