"""shared secrets and the node registry

Revision ID: 5e1f0c7a9b21
Revises: 3b9c1e7d2a40
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import horde.server.kit.orm

revision: str = "5e1f0c7a9b21"
down_revision: str | None = "3b9c1e7d2a40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    op.create_table(
        "server_nodes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("storage", sa.String(length=512), nullable=False),
        sa.Column("started_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_nodes")),
    )


def downgrade() -> None:
    op.drop_table("server_nodes")
    op.drop_table("server_secrets")
