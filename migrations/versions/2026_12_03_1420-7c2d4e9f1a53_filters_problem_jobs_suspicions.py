"""prompt filters, problem jobs and user suspicions

Revision ID: 7c2d4e9f1a53
Revises: 7c4d2e9f1a63
Create Date: 2026-12-03 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import horde.server.kit.orm

revision: str = "7c2d4e9f1a53"
down_revision: str | None = "7c4d2e9f1a63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "filters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("regex", sa.Text(), nullable=False),
        sa.Column("filter_type", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("replacement", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_filters_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filters")),
        sa.UniqueConstraint("regex", "filter_type", name="uq_filters_regex_filter_type"),
    )
    op.create_index(op.f("ix_filters_filter_type"), "filters", ["filter_type"], unique=False)
    versions = op.create_table(
        "filter_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filter_versions")),
    )
    op.bulk_insert(versions, [{"id": 1, "version": 0}])  # the one row every filter write bumps
    op.create_table(
        "problem_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=False),
        sa.Column("ipaddr", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("reported_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_jobs")),
    )
    op.create_index(op.f("ix_problem_jobs_reported_at"), "problem_jobs", ["reported_at"], unique=False)
    op.create_index(op.f("ix_problem_jobs_user_id"), "problem_jobs", ["user_id"], unique=False)
    op.create_table(
        "user_suspicions",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_suspicions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "reason", name=op.f("pk_user_suspicions")),
    )


def downgrade() -> None:
    op.drop_table("user_suspicions")
    op.drop_index(op.f("ix_problem_jobs_user_id"), table_name="problem_jobs")
    op.drop_index(op.f("ix_problem_jobs_reported_at"), table_name="problem_jobs")
    op.drop_table("problem_jobs")
    op.drop_table("filter_versions")
    op.drop_index(op.f("ix_filters_filter_type"), table_name="filters")
    op.drop_table("filters")
