"""worker rewards: escrow, uptime check-ins, require_upfront_kudos

Revision ID: 5e1a7c3d9b24
Revises: b5e1d7c93f20
Create Date: 2026-12-03 17:00:00

ADR 0023: `kudos_balances.escrow` (evaluating kudos, folded from `escrow` postings), the insert-only
`worker_checkins` and the uptime folder's `worker_uptime` cursor, `requests.upfront_covered` (what a
worker's `require_upfront_kudos` matches). `horde_queue_request` reads only the spendable account.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "5e1a7c3d9b24"
down_revision: str | None = "b5e1d7c93f20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION horde_queue_request(
    p_request jsonb, p_models varchar[], p_targets uuid[], p_jobs jsonb, p_limit integer, p_scope varchar[],
    p_hold bigint, p_floor bigint
) RETURNS TABLE (stored boolean, queued bigint, missing uuid, short boolean) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_user integer := (p_request->>'user_id')::integer;
    v_kind text := p_request->>'kind';
    v_id uuid := (p_request->>'id')::uuid;
    v_balance bigint;
    v_key double precision;
BEGIN
    stored := false;
    queued := 0;
    short := false;
    SELECT t.id INTO missing FROM unnest(p_targets) WITH ORDINALITY AS t(id, n)
        WHERE NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = t.id) ORDER BY t.n LIMIT 1;
    IF missing IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    -- one check at a time per user, so two requests cannot both fit under the cap (or the kudos)
    PERFORM pg_advisory_xact_lock(2, v_user);
    SELECT count(*) INTO queued FROM jobs j JOIN requests r ON r.id = j.request_id
        WHERE r.user_id = v_user AND j.kind = v_kind AND j.state = 'queued'
          AND (p_scope IS NULL OR r.any_model
               OR r.id IN (SELECT m.request_id FROM request_models m WHERE m.model = ANY(p_scope)));
    IF queued + jsonb_array_length(p_jobs) > p_limit THEN
        RETURN NEXT;
        RETURN;
    END IF;
    -- the balance as kudos.service.balance_of reads it: folded balance plus unfolded postings of the
    -- spendable account (escrow postings are not spendable, ADR 0023)
    v_balance := coalesce((SELECT b.balance FROM kudos_balances b WHERE b.user_id = v_user), 0)
        + (SELECT coalesce(sum(k.amount), 0) FROM kudos_postings k
            WHERE k.user_id = v_user AND NOT k.folded AND k.account = 'user');
    IF p_hold > 0 THEN
        -- upfront kudos: reserve the price against what is available (kudos.service.available_of),
        -- under the payer's admission lock that transfers take too (kudos.transfers.lock_users)
        PERFORM pg_advisory_xact_lock(1263879216, v_user);
        IF v_balance - p_floor - (SELECT coalesce(sum(h.amount), 0) FROM kudos_holds h WHERE h.user_id = v_user)
                < p_hold THEN
            short := true;
            RETURN NEXT;
            RETURN;
        END IF;
        INSERT INTO kudos_holds (ref, user_id, amount, created_at)
            VALUES ('upfront:' || v_id::text, v_user, p_hold, now());
    END IF;
    v_key := v_balance::double precision / 100 - 5.0 * (p_request->>'created_at')::double precision;
    INSERT INTO requests
        SELECT * FROM jsonb_populate_record(NULL::requests, p_request || jsonb_build_object('priority_key', v_key));
    INSERT INTO request_models (request_id, model) SELECT v_id, m FROM unnest(p_models) AS m;
    INSERT INTO request_workers (request_id, worker_id) SELECT v_id, t FROM unnest(p_targets) AS t;
    INSERT INTO jobs
        SELECT * FROM jsonb_populate_recordset(
            NULL::jobs,
            (SELECT jsonb_agg(j || jsonb_build_object('priority_key', v_key)) FROM jsonb_array_elements(p_jobs) AS j)
        );
    stored := true;
    RETURN NEXT;
END
$$
"""


def _previous_function() -> str:
    path = next(Path(__file__).parent.glob("*-7c4d2e9f1a63_upfront_kudos_holds.py"))
    spec = importlib.util.spec_from_file_location("upfront_kudos_holds", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.FUNCTION)


def upgrade() -> None:
    with op.batch_alter_table("kudos_balances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escrow", sa.BigInteger(), server_default="0", nullable=False))
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("upfront_covered", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    op.create_table(
        "worker_checkins",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("reward", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_checkins")),
    )
    op.create_table(
        "worker_uptime",
        sa.Column("worker_id", sa.Uuid(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("accrued", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["workers.id"], name=op.f("fk_worker_uptime_worker_id_workers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_uptime")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_previous_function())
    op.drop_table("worker_uptime")
    op.drop_table("worker_checkins")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("upfront_covered")
    with op.batch_alter_table("kudos_balances", schema=None) as batch_op:
        batch_op.drop_column("escrow")
