"""shared keys and their charges; statistics events, buckets and totals (ADR 0021)

Revision ID: b7e3a1c9d421
Revises: 9a4e2c7d1b22
Create Date: 2026-12-03 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import horde.server.kit.orm

revision: str = "b7e3a1c9d421"
down_revision: str | None = "9a4e2c7d1b22"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("allowance", sa.BigInteger(), nullable=True),
        sa.Column("utilized", sa.BigInteger(), nullable=False),
        sa.Column("expiry", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("max_image_pixels", sa.Integer(), nullable=False),
        sa.Column("max_image_steps", sa.Integer(), nullable=False),
        sa.Column("max_text_tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_shared_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_shared_keys_key_hash")),
    )
    op.create_index(op.f("ix_shared_keys_user_id"), "shared_keys", ["user_id"], unique=False)
    op.create_table(
        "shared_key_charges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_key_charges")),
    )
    op.create_index(op.f("ix_shared_key_charges_key_id"), "shared_key_charges", ["key_id"], unique=False)
    op.create_table(
        "stat_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("things", sa.Float(), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stat_events")),
    )
    op.create_table(
        "stat_buckets",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("things", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "model", "grain", "start", name=op.f("pk_stat_buckets")),
    )
    op.create_table(
        "stat_totals",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("things", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "model", name=op.f("pk_stat_totals")),
    )


def downgrade() -> None:
    op.drop_table("stat_totals")
    op.drop_table("stat_buckets")
    op.drop_table("stat_events")
    op.drop_index(op.f("ix_shared_key_charges_key_id"), table_name="shared_key_charges")
    op.drop_table("shared_key_charges")
    op.drop_index(op.f("ix_shared_keys_user_id"), table_name="shared_keys")
    op.drop_table("shared_keys")
