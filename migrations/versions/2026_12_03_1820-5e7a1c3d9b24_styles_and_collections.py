"""styles, their tags, models and examples, collections, style use events

Revision ID: 5e7a1c3d9b24
Revises: b7e3a1c9d421
Create Date: 2026-12-03 17:03:16
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import horde.server.kit.orm

revision: str = "5e7a1c3d9b24"
down_revision: str | None = "b7e3a1c9d421"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "style_uses",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("style_id", sa.Uuid(), nullable=False),
        sa.Column("collection_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_style_uses")),
    )
    op.create_table(
        "style_collections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("info", sa.Text(), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("use_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_style_collections_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_style_collections")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_style_collections_user_id")),
    )
    with op.batch_alter_table("style_collections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_style_collections_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_style_collections_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_style_collections_user_id"), ["user_id"], unique=False)

    op.create_table(
        "styles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("info", sa.Text(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "models",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("nsfw", sa.Boolean(), nullable=False),
        sa.Column("sharedkey_id", sa.String(length=36), nullable=True),
        sa.Column("use_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_styles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_styles")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_styles_user_id")),
    )
    with op.batch_alter_table("styles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_styles_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_styles_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_styles_user_id"), ["user_id"], unique=False)

    op.create_table(
        "collection_styles",
        sa.Column("collection_id", sa.Uuid(), nullable=False),
        sa.Column("style_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["style_collections.id"],
            name=op.f("fk_collection_styles_collection_id_style_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["style_id"], ["styles.id"], name=op.f("fk_collection_styles_style_id_styles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("collection_id", "style_id", name=op.f("pk_collection_styles")),
    )
    with op.batch_alter_table("collection_styles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collection_styles_style_id"), ["style_id"], unique=False)

    op.create_table(
        "style_examples",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("style_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["style_id"], ["styles.id"], name=op.f("fk_style_examples_style_id_styles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_style_examples")),
        sa.UniqueConstraint("style_id", "url", name=op.f("uq_style_examples_style_id")),
    )
    with op.batch_alter_table("style_examples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_style_examples_style_id"), ["style_id"], unique=False)

    op.create_table(
        "style_models",
        sa.Column("style_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["style_id"], ["styles.id"], name=op.f("fk_style_models_style_id_styles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("style_id", "model", name=op.f("pk_style_models")),
    )
    with op.batch_alter_table("style_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_style_models_model"), ["model"], unique=False)

    op.create_table(
        "style_tags",
        sa.Column("style_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=25), nullable=False),
        sa.ForeignKeyConstraint(
            ["style_id"], ["styles.id"], name=op.f("fk_style_tags_style_id_styles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("style_id", "tag", name=op.f("pk_style_tags")),
    )
    with op.batch_alter_table("style_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_style_tags_tag"), ["tag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("style_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_style_tags_tag"))

    op.drop_table("style_tags")
    with op.batch_alter_table("style_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_style_models_model"))

    op.drop_table("style_models")
    with op.batch_alter_table("style_examples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_style_examples_style_id"))

    op.drop_table("style_examples")
    with op.batch_alter_table("collection_styles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_styles_style_id"))

    op.drop_table("collection_styles")
    with op.batch_alter_table("styles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_styles_user_id"))
        batch_op.drop_index(batch_op.f("ix_styles_name"))
        batch_op.drop_index(batch_op.f("ix_styles_kind"))

    op.drop_table("styles")
    with op.batch_alter_table("style_collections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_style_collections_user_id"))
        batch_op.drop_index(batch_op.f("ix_style_collections_name"))
        batch_op.drop_index(batch_op.f("ix_style_collections_kind"))

    op.drop_table("style_collections")
    op.drop_table("style_uses")
