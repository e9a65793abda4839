"""queue a request in one statement on PostgreSQL (horde_queue_request)

Revision ID: 3b9c1e7d2a40
Revises: fcbda31b46f1
Create Date: 2026-12-03 10:00:00

The PostgreSQL statement layer (`horde.server.jobs.statements.postgresql`) queues a request with one
call of this function: the owner's advisory lock first, then the checks and the inserts, each a
statement of its own inside the function (a volatile function takes a new snapshot per statement, so
the count sees every request committed before the lock was granted). SQLite needs none of it: its
transactions are serialised by BEGIN IMMEDIATE.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3b9c1e7d2a40"
down_revision: str | None = "fcbda31b46f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION horde_queue_request(
    p_request jsonb, p_models varchar[], p_targets uuid[], p_jobs jsonb, p_limit integer, p_scope varchar[]
) RETURNS TABLE (stored boolean, queued bigint, missing uuid) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_user integer := (p_request->>'user_id')::integer;
    v_kind text := p_request->>'kind';
    v_id uuid := (p_request->>'id')::uuid;
    v_balance bigint;
    v_key double precision;
BEGIN
    stored := false;
    queued := 0;
    SELECT t.id INTO missing FROM unnest(p_targets) WITH ORDINALITY AS t(id, n)
        WHERE NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = t.id) ORDER BY t.n LIMIT 1;
    IF missing IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    -- one check at a time per user, so two requests cannot both fit under the cap
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION horde_queue_request(jsonb, varchar[], uuid[], jsonb, integer, varchar[])")
