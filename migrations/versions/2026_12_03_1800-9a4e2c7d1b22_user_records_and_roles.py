"""user records, usage multiplier and proxy passkeys

Revision ID: 9a4e2c7d1b22
Revises: 5e1a7c3d9b24
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import horde.server.kit.orm

revision: str = "9a4e2c7d1b22"
down_revision: str | None = "5e1a7c3d9b24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_record_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("things", sa.Float(), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_record_events")),
    )
    op.create_table(
        "user_records",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("usage", sa.Float(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("contribution", sa.Float(), nullable=False),
        sa.Column("fulfilments", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_records_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", name=op.f("pk_user_records")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("usage_multiplier", sa.Float(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("proxy_passkey_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_users_proxy_passkey_hash"), ["proxy_passkey_hash"])
    # the records so far, from the workers' figures (their requesters' usage was never kept)
    op.execute(
        """INSERT INTO user_records (user_id, kind, usage, requests, contribution, fulfilments)
        SELECT user_id, CASE kind WHEN 'alchemy' THEN 'interrogation' ELSE kind END, 0, 0,
            SUM(things), SUM(fulfilments)
        FROM workers GROUP BY user_id, kind"""
    )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_proxy_passkey_hash"), type_="unique")
        batch_op.drop_column("proxy_passkey_hash")
        batch_op.drop_column("usage_multiplier")
    op.drop_table("user_records")
    op.drop_table("user_record_events")
