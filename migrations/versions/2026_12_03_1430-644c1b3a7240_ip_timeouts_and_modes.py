"""ip timeouts and horde modes

Revision ID: 644c1b3a7240
Revises: 7c2d4e9f1a53
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "644c1b3a7240"
down_revision: str | None = "7c2d4e9f1a53"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ip_timeouts",
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("offences", sa.Integer(), nullable=False),
        sa.Column("offences_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("network", "kind", name=op.f("pk_ip_timeouts")),
    )
    op.create_index(op.f("ix_ip_timeouts_expires_at"), "ip_timeouts", ["expires_at"], unique=False)
    op.create_table(
        "horde_modes",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.Float(), nullable=False),
        sa.Column("changed_by", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_horde_modes")),
    )


def downgrade() -> None:
    op.drop_table("horde_modes")
    op.drop_index(op.f("ix_ip_timeouts_expires_at"), table_name="ip_timeouts")
    op.drop_table("ip_timeouts")
