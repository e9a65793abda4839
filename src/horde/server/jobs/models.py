"""Requests and their pre-split jobs (ADR 0001): one table each for every kind, told apart by a `kind`
column (plain rows: no ORM inheritance; per-kind behaviour lives in `jobs/kinds/`).

Columns the pop matching filters on are real columns; the rest of a request is the per-kind JSON
`payload`, validated by that kind's contract model before it is stored.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base, JSONDoc


class JobState(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAULTED = "faulted"
    CANCELLED = "cancelled"


class RequestState(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    FAULTED = "faulted"


class Request(Base):
    __tablename__ = "requests"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(10), default=RequestState.ACTIVE)
    # times are epoch seconds: the claim and the sweeps do arithmetic on them in SQL
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    priority_key: Mapped[float] = mapped_column(Float)
    ttl: Mapped[float] = mapped_column(Float)  # seconds a worker has for one job of this request
    n: Mapped[int] = mapped_column(Integer)
    # matching columns
    prompt: Mapped[str] = mapped_column(Text, default="")
    pixels: Mapped[int] = mapped_column(Integer, default=0)
    max_length: Mapped[int] = mapped_column(Integer, default=0)
    max_context_length: Mapped[int] = mapped_column(Integer, default=0)
    tiles: Mapped[int] = mapped_column(Integer, default=0)
    nsfw: Mapped[bool] = mapped_column(Boolean, default=False)
    trusted_workers: Mapped[bool] = mapped_column(Boolean, default=False)
    slow_workers: Mapped[bool] = mapped_column(Boolean, default=True)
    extra_slow_workers: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_blacklist: Mapped[bool] = mapped_column(Boolean, default=False)
    has_worker_list: Mapped[bool] = mapped_column(Boolean, default=False)
    any_model: Mapped[bool] = mapped_column(Boolean, default=False)
    required_caps: Mapped[int] = mapped_column(BigInteger, default=0)
    over_average_steps: Mapped[bool] = mapped_column(Boolean, default=False)
    softprompt: Mapped[str] = mapped_column(String(255), default="")
    unsafe_ip: Mapped[bool] = mapped_column(Boolean, default=False)
    # whether the requester could pay it upfront when it was queued (held, trusted, or balance - floor
    # >= its per-job price): what a worker's `require_upfront_kudos` matches on (ADR 0023)
    upfront_covered: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    # the rest
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    webhook: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    kudos: Mapped[int] = mapped_column(BigInteger, default=0)  # per-job price, hundredths
    client_agent: Mapped[str] = mapped_column(String(1000), default="unknown:0:unknown")
    ipaddr: Mapped[str] = mapped_column(String(64), default="")


class RequestModel(Base):
    __tablename__ = "request_models"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(255), primary_key=True)


class RequestWorker(Base):
    __tablename__ = "request_workers"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10), default=JobState.QUEUED)
    position: Mapped[int] = mapped_column(Integer, default=0)
    priority_key: Mapped[float] = mapped_column(Float)
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    form: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    worker_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_meta: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    reward: Mapped[int] = mapped_column(BigInteger, default=0)  # hundredths paid to the worker
    cost: Mapped[int] = mapped_column(BigInteger, default=0)  # hundredths the requester paid

    __table_args__ = (
        # The claim walks this index backwards (priority_key DESC, id DESC); finished rows are not in it.
        Index(
            "ix_jobs_queue",
            "kind",
            "priority_key",
            "id",
            postgresql_where=text("state = 'queued'"),
            sqlite_where=text("state = 'queued'"),
        ),
        Index(
            "ix_jobs_leases",
            "lease_expires_at",
            postgresql_where=text("state = 'processing'"),
            sqlite_where=text("state = 'processing'"),
        ),
    )


class IdempotencyKey(Base):
    """A creation's `Idempotency-Key` (issue 10, finding 12): the first answer, replayed to retries with
    the same body; in the database so every API node sees it, swept after `expires_at`."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))  # the kind and the body, hashed
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)  # None while pending
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class ProblemJob(Base):
    """A job a worker reported as CSAM: its result was dropped; kept for moderators. No foreign keys:
    it outlives the request, which expiry deletes."""

    __tablename__ = "problem_jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # the job's id
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    worker_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    ipaddr: Mapped[str] = mapped_column(String(64), default="")
    prompt: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(255), default="")
    reported_at: Mapped[float] = mapped_column(Float, index=True)
