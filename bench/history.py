"""History: the database work of an empty pop must not grow with finished, unexpired requests.

Measures EXPLAIN (ANALYZE, BUFFERS) of the claim statement (`horde.server.jobs.matching.claim_statement`
compiled for PostgreSQL with literal binds, run in a rolled-back transaction) for a text, an image and
an alchemy worker on an empty queue; then COPYs `--rows` (200,000) finished requests with their `done`
jobs and request_models rows straight into the tables, VACUUM ANALYZEs, and measures again. Target: buffers
within 10 % of the empty-table figure. With `--pop-seconds` > 0 it also runs a short S3a flat window
before and after, for pops/s and server CPU per empty pop.

It writes to the horde's database: `bench local history` (a throwaway database) is the normal use;
`bench run history` needs `--pg-url` and `--allow-insert`, and deletes its rows afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.net import BRIDGE, Pool, Shard, create_test_user, make_fleet, same_pop, shard, warm_up
from bench.runner import Target, fmt_cpu, measure, per_op, run_window
from bench.s3_idle import text_pop

TOLERANCE = 1.10
KIND_POPS: dict[str, dict[str, Any]] = {
    "text": text_pop(0),
    "image": {"models": ["bench/idle-image-0"], "max_pixels": 1024 * 1024, "amount": 1},
    "alchemy": {"forms": ["caption", "nsfw", "interrogation"], "amount": 1, "max_tiles": 16},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=200_000, help="finished requests (one done job each)")
    p.add_argument("--repeat", type=int, default=15, help="EXPLAIN runs per measurement (median kept)")
    p.add_argument("--pop-seconds", type=float, default=3.0, help="S3a flat window before/after (0: skip)")
    p.add_argument("--flat-workers", type=int, default=40)
    p.add_argument("--allow-insert", action="store_true", help="allow writing rows into a `run` target")
    p.add_argument("--keep-history", action="store_true", help="leave the inserted rows in place")


def _profile(kind: str, worker: dict[str, Any]) -> Any:
    from horde.server.jobs.records import WorkerProfile
    from horde.server.workers.capabilities import load_table

    pop = KIND_POPS[kind]
    fields: dict[str, Any] = {
        "worker_id": worker["id"], "owner_id": worker["user_id"], "kind": kind, "owner_trusted": True,
        "caps": int(load_table("").caps_of(BRIDGE)), "slow": kind == "text",
    }  # fmt: skip
    if kind == "alchemy":
        fields.update(forms=frozenset(pop["forms"]), max_tiles=pop["max_tiles"])
    else:
        fields["models"] = frozenset(pop["models"])
    if kind == "text":
        fields.update(max_length=pop["max_length"], max_context_length=pop["max_context_length"])
    if kind == "image":
        fields["max_pixels"] = pop["max_pixels"]
    return WorkerProfile(**fields)


def claim_sql(profile: Any) -> tuple[str, list[Any]]:
    """The claim statement the server runs for this worker, as the server sends it: SQL and values."""
    from sqlalchemy.dialects import postgresql

    from horde.server.jobs.matching import claim_params, claim_statement

    fallback = sorted(profile.models)[0] if profile.models else None
    params = claim_params(profile, now=time.time(), fallback_model=fallback)
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    sql, names, own = claim_statement(profile, limit=1).compiled_for(dialect)
    return sql, [params[name] if name in params else own[name] for name in names]


def _buffers(node: dict[str, Any]) -> int:
    return sum(int(node.get(k, 0)) for k in ("Shared Hit Blocks", "Shared Read Blocks"))


async def explain(conn: asyncpg.Connection, claim: tuple[str, list[Any]], repeat: int) -> dict[str, Any]:
    """Median buffers (execution and planning) and times of EXPLAIN ANALYZE over `repeat` runs."""
    runs = []
    for _ in range(repeat):
        tx = conn.transaction()
        await tx.start()
        try:
            raw = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {claim[0]}", *claim[1])
        finally:
            await tx.rollback()  # EXPLAIN ANALYZE runs the UPDATE: never keep what it did
        runs.append((json.loads(raw) if isinstance(raw, str) else raw)[0])
    exec_buffers = [_buffers(r["Plan"]) for r in runs]
    plan_buffers = [_buffers(r.get("Planning", {})) for r in runs]
    return {
        "buffers": statistics.median(exec_buffers), "planning_buffers": statistics.median(plan_buffers),
        "execution_ms": statistics.median(r["Execution Time"] for r in runs),
        "planning_ms": statistics.median(r["Planning Time"] for r in runs),
        "rows": runs[-1]["Plan"].get("Actual Rows"), "plan": _plan_lines(runs[-1]["Plan"]),
    }  # fmt: skip


def _plan_lines(node: dict[str, Any], depth: int = 0) -> list[str]:
    what = node["Node Type"] + (f" on {node['Relation Name']}" if "Relation Name" in node else "")
    what += f" using {node['Index Name']}" if "Index Name" in node else ""
    lines = [f"{'  ' * depth}{what} (rows={node.get('Actual Rows')}, loops={node.get('Actual Loops')}, "
             f"buffers={_buffers(node)})"]  # fmt: skip
    for child in node.get("Plans", []):
        lines += _plan_lines(child, depth + 1)
    return lines


def _record(columns: list[tuple[str, str, bool]], values: dict[str, Any]) -> tuple[Any, ...]:
    defaults = {"integer": 0, "bigint": 0, "double precision": 0.0, "boolean": False, "jsonb": "{}",
                "json": "{}", "text": "", "character varying": ""}  # fmt: skip
    out = []
    for name, dtype, nullable in columns:
        if name in values:
            out.append(values[name])
        else:
            out.append(None if nullable else defaults.get(dtype, ""))
    return tuple(out)


async def _columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, str, bool]]:
    rows = await conn.fetch(
        "SELECT column_name, data_type, is_nullable = 'YES' AS nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    return [(r["column_name"], r["data_type"], r["nullable"]) for r in rows]


async def insert_history(conn: asyncpg.Connection, rows: int, user_id: int) -> dict[str, Any]:
    """COPY `rows` finished requests (kinds mixed), one done job each, plus their request_models."""
    started = time.monotonic()
    now = time.time()
    cols = {t: await _columns(conn, t) for t in ("requests", "jobs", "request_models")}
    requests, jobs, models = [], [], []
    kinds = ("text", "image", "alchemy")
    for i in range(rows):
        kind, rid, created = kinds[i % 3], uuid.uuid4(), now - random.uniform(0, 1000)
        requests.append(_record(cols["requests"], {
            "id": rid, "kind": kind, "user_id": user_id, "state": "active", "created_at": created,
            "expires_at": now + 1200, "priority_key": 100.0 - 5 * created, "ttl": 150.0, "n": 1,
            "prompt": f"history {i}", "pixels": 512 * 512 if kind == "image" else 0, "max_length": 80,
            "max_context_length": 1024, "slow_workers": True, "payload": json.dumps({"history": i}),
            "client_agent": "horde-bench:history", "ipaddr": "127.0.0.1",
        }))  # fmt: skip
        jobs.append(_record(cols["jobs"], {
            "id": uuid.uuid4(), "request_id": rid, "kind": kind, "state": "done", "position": 0,
            "priority_key": 100.0 - 5 * created, "created_at": created, "started_at": created + 1,
            "finished_at": created + 5, "lease_expires_at": created + 151, "worker_id": uuid.uuid4(),
            "model": None if kind == "alchemy" else f"bench/history-{kind}", "result": "done",
            "form": "caption" if kind == "alchemy" else None,
        }))  # fmt: skip
        if kind != "alchemy":
            models.append(
                _record(cols["request_models"], {"request_id": rid, "model": f"bench/history-{kind}"})
            )
    for table, records in (("requests", requests), ("jobs", jobs), ("request_models", models)):
        await conn.copy_records_to_table(table, records=records, columns=[c[0] for c in cols[table]])
    copied = time.monotonic() - started
    for table in ("requests", "jobs", "request_models"):
        # the steady state autovacuum reaches anyway; measuring during it measures autovacuum
        await conn.execute(f"VACUUM (ANALYZE) {table}")
    return {"rows": rows, "seconds": copied, "vacuum_seconds": time.monotonic() - started - copied}


async def _measure_all(
    conn: asyncpg.Connection, sqls: dict[str, tuple[str, list[Any]]], repeat: int
) -> dict[str, Any]:
    return {kind: await explain(conn, sql, repeat) for kind, sql in sqls.items()}


async def _pop_window(target: Target, args: argparse.Namespace, fleet: list[Any]) -> dict[str, Any] | None:
    if args.pop_seconds <= 0:
        return None
    shards = [Shard(target.url, workers=s) for s in shard(fleet, args.procs)]
    rec, window = await run_window(target, "bench.s3_idle:flat", shards, seconds=args.pop_seconds)
    pops = rec.counts.get("pop", 0)
    return {"pops_per_s": pops / window["seconds"], "pops": pops, "window": window,
            "cpu_per_pop": per_op(window, pops), "errors": dict(rec.errors)}  # fmt: skip


def _check_target(target: Target, args: argparse.Namespace) -> None:
    if not (target.pg_dsn and target.pg_db):
        raise SystemExit("history needs the horde's database: give --pg-url (or run `bench local history`)")
    if args.mode == "run" and not args.allow_insert:
        raise SystemExit(f"history writes {args.rows} rows into {target.pg_db}: add --allow-insert")


async def run(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    _check_target(target, args)
    pool = Pool(target.url)
    owner = await create_test_user(pool, "bench-history-owner")
    fleet = {kind: await make_fleet(pool, kind, 1, same_pop(KIND_POPS[kind])) for kind in KIND_POPS}
    flat = await make_fleet(pool, "text", args.flat_workers, text_pop)
    await warm_up(pool, [w for ws in fleet.values() for w in ws] + flat)
    await pool.aclose()
    assert target.pg_dsn is not None
    conn = await asyncpg.connect(target.pg_dsn)
    try:
        sqls: dict[str, tuple[str, list[Any]]] = {}
        for kind, (w,) in fleet.items():
            row = await conn.fetchrow("SELECT id, user_id FROM workers WHERE name = $1", w.name)
            sqls[kind] = claim_sql(_profile(kind, dict(row)))
        queued = await conn.fetchval("SELECT count(*) FROM jobs WHERE state = 'queued'")
        before = await _measure_all(conn, sqls, args.repeat)
        pops_before = await _pop_window(target, args, flat)
        inserted, ins_window = await measure(target, insert_history(conn, args.rows, owner.user_id))
        after = await _measure_all(conn, sqls, args.repeat)
        pops_after = await _pop_window(target, args, flat)
        if args.mode == "run" and not args.keep_history:
            await conn.execute(
                "DELETE FROM requests WHERE user_id = $1 AND client_agent = 'horde-bench:history'",
                owner.user_id,
            )
    finally:
        await conn.close()
    claims = {kind: sql for kind, (sql, _) in sqls.items()}
    result = {
        "parameters": vars(args) | {"url": target.url}, "queued_jobs_at_start": queued, "claim_sql": claims,
        "empty": before, "history": after, "insert": inserted | {"window": ins_window},
        "pops_empty_tables": pops_before, "pops_with_history": pops_after,
    }  # fmt: skip
    _print(result, args.rows)
    return result


def _print(r: dict[str, Any], rows: int) -> None:
    print(
        f"History: {rows} finished requests COPYed in {r['insert']['seconds']:.1f} s, "
        f"VACUUM ANALYZE {r['insert']['vacuum_seconds']:.1f} s "
        f"(queued jobs at start: {r['queued_jobs_at_start']})"
    )
    for kind in KIND_POPS:
        e, h = r["empty"][kind], r["history"][kind]
        ratio = h["buffers"] / e["buffers"] if e["buffers"] else float("inf")
        verdict = "PASS" if ratio <= TOLERANCE else "FAIL"
        print(
            f"  {kind} empty pop: buffers {e['buffers']:g} -> {h['buffers']:g} (x{ratio:.2f}) "
            f"[{verdict}: within 10 %]; "
            f"planning buffers {e['planning_buffers']:g} -> {h['planning_buffers']:g}; "
            f"execution {e['execution_ms']:.3f} -> {h['execution_ms']:.3f} ms, "
            f"planning {e['planning_ms']:.3f} -> {h['planning_ms']:.3f} ms"
        )
    print("  plan with history (text):")
    for line in r["history"]["text"]["plan"]:
        print(f"    {line}")
    for label, key in (("empty tables", "pops_empty_tables"), ("with history", "pops_with_history")):
        if pops := r[key]:
            print(
                f"  S3a flat {label}: {pops['pops_per_s']:.0f} pops/s; {fmt_cpu(pops['cpu_per_pop'], 'pop')}"
            )
