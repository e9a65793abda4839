"""upfront-kudos holds (taken by horde_queue_request) and idempotency keys

Revision ID: 7c4d2e9f1a63
Revises: 7c2d9e4f1a36
Create Date: 2026-12-03 14:00:00

`horde_queue_request` gains the upfront-kudos reservation (ADR 0014): under the owner's advisory lock
it compares the hold with balance - floor - holds and takes it with the request, or stores nothing.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import horde.server.kit.orm

revision: str = "7c4d2e9f1a63"
down_revision: str | None = "7c2d9e4f1a36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SIGNATURE = "horde_queue_request(jsonb, varchar[], uuid[], jsonb, integer, varchar[])"
NEW_SIGNATURE = "horde_queue_request(jsonb, varchar[], uuid[], jsonb, integer, varchar[], bigint, bigint)"

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
    -- the balance as kudos.service.balance_of reads it: folded balance plus unfolded postings
    v_balance := coalesce((SELECT b.balance FROM kudos_balances b WHERE b.user_id = v_user), 0)
        + (SELECT coalesce(sum(k.amount), 0) FROM kudos_postings k WHERE k.user_id = v_user AND NOT k.folded);
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
    path = next(Path(__file__).parent.glob("*-3b9c1e7d2a40_queue_request_function.py"))
    spec = importlib.util.spec_from_file_location("queue_request_function", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.FUNCTION)


def upgrade() -> None:
    op.create_table(
        "kudos_holds",
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", horde.server.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_kudos_holds_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_kudos_holds")),
    )
    op.create_index(op.f("ix_kudos_holds_user_id"), "kudos_holds", ["user_id"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "answer",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {NEW_SIGNATURE}")
        op.execute(_previous_function())
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_kudos_holds_user_id"), table_name="kudos_holds")
    op.drop_table("kudos_holds")
