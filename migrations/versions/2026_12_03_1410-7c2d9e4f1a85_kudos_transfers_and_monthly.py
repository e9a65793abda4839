"""kudos transfers (idempotency keys, the transfer-back window) and monthly kudos

Revision ID: 7c2d9e4f1a85
Revises: 5e1f0c7a9b21
Create Date: 2026-12-03 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import horde.server.kit.orm

revision: str = "7c2d9e4f1a85"
down_revision: str | None = "5e1f0c7a9b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kudos_transfers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kudos_transfers")),
        sa.UniqueConstraint("sender_id", "idempotency_key", name=op.f("uq_kudos_transfers_sender_id")),
    )
    with op.batch_alter_table("kudos_transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_kudos_transfers_pair", ["sender_id", "recipient_id", "created_at"], unique=False
        )
    op.create_table(
        "kudos_monthly",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("last_received", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_kudos_monthly")),
    )


def downgrade() -> None:
    op.drop_table("kudos_monthly")
    with op.batch_alter_table("kudos_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_kudos_transfers_pair")
    op.drop_table("kudos_transfers")
