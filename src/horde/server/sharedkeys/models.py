"""The shared keys table and its insert-only charges (folded into the key's `utilized`, ADR 0021)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base, UTCDateTime


class SharedKey(Base):
    """A key that spends its owner's kudos: stored only as the peppered hash of its secret id.

    What is left to spend is `allowance - utilized - unfolded charges`; `allowance` is NULL for an
    unlimited key. A charge never updates this row (a key shared by many clients would be a hot row)."""

    __tablename__ = "shared_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)  # internal
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    allowance: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # hundredths; NULL: unlimited
    utilized: Mapped[int] = mapped_column(BigInteger, default=0)  # hundredths, folded from the charges
    expiry: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    max_image_pixels: Mapped[int] = mapped_column(Integer, default=-1)
    max_image_steps: Mapped[int] = mapped_column(Integer, default=-1)
    max_text_tokens: Mapped[int] = mapped_column(Integer, default=-1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SharedKeyCharge(Base):
    """What one request spent through a key (a negative amount gives it back): inserted, folded into
    the key's `utilized`, then deleted. No foreign key: a deleted key's charges fold into nothing."""

    __tablename__ = "shared_key_charges"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # hundredths
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
