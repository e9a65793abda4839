"""The users table. Roles are plain flags; the API key is stored only as a peppered SHA-256."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base, UTCDateTime

ANON_USER_ID = 0
ANON_API_KEY = "0000000000"
ANON_OAUTH_ID = "anon"
WIPED_PREFIX = "wiped:"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100))
    oauth_id: Mapped[str] = mapped_column(String(255), unique=True)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_active: Mapped[datetime] = mapped_column(UTCDateTime())
    concurrency: Mapped[int] = mapped_column(Integer, default=30)
    worker_invited: Mapped[int] = mapped_column(Integer, default=0)
    moderator: Mapped[bool] = mapped_column(Boolean, default=False)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    customizer: Mapped[bool] = mapped_column(Boolean, default=False)
    service: Mapped[bool] = mapped_column(Boolean, default=False)
    education: Mapped[bool] = mapped_column(Boolean, default=False)
    vpn: Mapped[bool] = mapped_column(Boolean, default=False)
    special: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    public_workers: Mapped[bool] = mapped_column(Boolean, default=False)
    contact: Mapped[str | None] = mapped_column(String(500), nullable=True)
    admin_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    usage_multiplier: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    # a service account's proxy passkey, peppered and hashed like API keys (shown once, when generated)
    proxy_passkey_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)

    @property
    def alias(self) -> str:
        return f"{self.username}#{self.id}"

    @property
    def is_anon(self) -> bool:
        return self.id == ANON_USER_ID

    @property
    def wiped(self) -> bool:
        """A deleted user whose identity was erased (its postings stay, under this id, as history)."""
        return self.oauth_id.startswith(WIPED_PREFIX)

    @property
    def pseudonymous(self) -> bool:
        return self.oauth_id != ANON_OAUTH_ID and self.oauth_id.startswith("pseudo:")


class Suspicion(IntEnum):
    """The reference's suspicion reasons (SEMANTICS.md 5); each counts once except where marked."""

    WORKER_NAME_LONG = 0
    WORKER_NAME_EXTREME = 1
    WORKER_PROFANITY = 2
    UNSAFE_IP = 3
    EXTREME_MAX_PIXELS = 4
    UNREASONABLY_FAST = 5  # accumulates
    USERNAME_LONG = 6
    USERNAME_PROFANITY = 7
    CORRUPT_PROMPT = 8
    TOO_MANY_JOBS_ABORTED = 9  # accumulates


REPEATABLE_SUSPICIONS = frozenset({Suspicion.UNREASONABLY_FAST, Suspicion.TOO_MANY_JOBS_ABORTED})


class UserSuspicion(Base):
    """One reason a user is suspicious (SEMANTICS.md 5): most count once, some accumulate."""

    __tablename__ = "user_suspicions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=1)


class UserRecordEvent(Base):
    """What one finished job adds to its requester's and its worker owner's records (SEMANTICS.md 5):
    inserted by the completion, folded into `user_records`, then deleted. No foreign keys: an event of a
    user wiped meanwhile folds into nothing."""

    __tablename__ = "user_record_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    requester_id: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(Integer)  # the worker's owner
    things: Mapped[float] = mapped_column(Float, default=0.0)  # megapixelsteps, tokens or forms
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserRecord(Base):
    """A user's folded records for one kind: usage and requests as a requester, contribution and
    fulfilments as a worker owner. Only the fold writes it."""

    __tablename__ = "user_records"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    usage: Mapped[float] = mapped_column(Float, default=0.0)  # things requested x usage_multiplier
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    contribution: Mapped[float] = mapped_column(Float, default=0.0)
    fulfilments: Mapped[int] = mapped_column(BigInteger, default=0)
