"""Styles, their tags, models and examples, collections of styles, and the insert-only use events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from horde.server.kit.orm import Base, JSONDoc, UTCDateTime


class Style(Base):
    """A named prompt template with params and models; `kind` is image or text.

    `use_count` is written only by the fold of `style_uses` (ADR 0024), never by a request."""

    __tablename__ = "styles"
    __table_args__ = (UniqueConstraint("user_id", "name"),)  # case-sensitive, per user (collections apart)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(10), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    info: Mapped[str | None] = mapped_column(Text, nullable=True)
    prompt: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    models: Mapped[list[str]] = mapped_column(JSONDoc)  # in the order given; style_models for filtering
    tags: Mapped[list[str]] = mapped_column(JSONDoc)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    nsfw: Mapped[bool] = mapped_column(Boolean, default=False)
    sharedkey_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # a UUID, not checked here
    use_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StyleTag(Base):
    """One tag of a style, for the list's `tag` filter."""

    __tablename__ = "style_tags"

    style_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("styles.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(25), primary_key=True, index=True)


class StyleModel(Base):
    """One model of a style, for the list's `model` filter."""

    __tablename__ = "style_models"

    style_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("styles.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class StyleExample(Base):
    """An example image (an https URL) of an image style; at most 4, one of them primary."""

    __tablename__ = "style_examples"
    __table_args__ = (UniqueConstraint("style_id", "url"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    style_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("styles.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(1024))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StyleCollection(Base):
    """A named set of styles of one kind; a request naming it gets one of them at random."""

    __tablename__ = "style_collections"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(10), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    info: Mapped[str | None] = mapped_column(Text, nullable=True)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    use_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CollectionStyle(Base):
    """A style in a collection; deleting the style takes it out of its collections."""

    __tablename__ = "collection_styles"

    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("style_collections.id", ondelete="CASCADE"), primary_key=True
    )
    style_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("styles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class StyleUse(Base):
    """One request queued with a style (and the collection it came through): inserted, folded into
    the counts, then deleted (ADR 0024). No foreign key: a use of a style deleted meanwhile folds
    into nothing."""

    __tablename__ = "style_uses"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    style_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    collection_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
