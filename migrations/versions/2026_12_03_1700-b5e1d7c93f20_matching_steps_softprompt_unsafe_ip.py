"""matching columns: over_average_steps, softprompt, unsafe_ip on requests

Revision ID: b5e1d7c93f20
Revises: 644c1b3a7240
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b5e1d7c93f20"
down_revision: str | None = "644c1b3a7240"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # server defaults only so that requests queued before the upgrade get values; new rows carry them
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("over_average_steps", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("softprompt", sa.String(length=255), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("unsafe_ip", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("unsafe_ip")
        batch_op.drop_column("softprompt")
        batch_op.drop_column("over_average_steps")
