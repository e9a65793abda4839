"""S3 idle poll: text workers popping an empty queue.

(a) flat: `--flat-workers` (40) workers pop without pause for `--seconds` -> pops/s (target >= 2,000).
(b) paced: `--paced-workers` (200) workers each pop once per `--interval` (1 s) with +-`--jitter` (10 %)
    after each answer, random initial phase -> latency percentiles (target p99 <= 25 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from bench.common import Record, fmt_latency, percentiles
from bench.net import Pool, Shard, WorkerSpec, call, fault_popped, make_fleet, pop_path, shard, warm_up
from bench.runner import Target, fmt_cpu, per_op, run_window

FLAT_TARGET = 2000.0
PACED_P99_TARGET = 25.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flat-workers", type=int, default=40)
    p.add_argument("--paced-workers", type=int, default=200)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each of the two windows")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--jitter", type=float, default=0.1, help="fraction of the interval")
    p.add_argument("--part", choices=("both", "flat", "paced"), default="both")


def text_pop(i: int) -> dict[str, Any]:
    return {
        "models": [f"bench/idle-text-{i % 5}"],
        "max_length": 512,
        "max_context_length": 2048,
        "amount": 1,
    }


async def _pop(rec: Record, pool: Pool, w: WorkerSpec) -> None:
    client = pool.client(w.source)
    response = await call(rec, "pop", client, "POST", pop_path(w.kind), key=w.api_key, body=w.pop)
    if response is not None and (body := response.json()).get("id"):
        rec.counts["unexpected_jobs"] += await fault_popped(client, w, body, rec)


async def flat(sh: Shard, start_at: float, deadline: float) -> Record:
    """Child: every worker pops as fast as the server answers until the deadline."""
    rec, pool = Record(), Pool(sh.url, connections=len(sh.workers))

    async def loop(w: WorkerSpec) -> None:
        while time.monotonic() < deadline:
            await _pop(rec, pool, w)

    await asyncio.gather(*(loop(w) for w in sh.workers))
    await pool.aclose()
    return rec


async def paced(sh: Shard, start_at: float, deadline: float) -> Record:
    """Child: every worker pops, sleeps interval +- jitter after the answer, and again."""
    rec, pool = Record(), Pool(sh.url, connections=len(sh.workers))
    interval, jitter = sh.params["interval"], sh.params["jitter"]

    async def loop(w: WorkerSpec) -> None:
        await asyncio.sleep(random.uniform(0, interval))
        while time.monotonic() < deadline:
            await _pop(rec, pool, w)
            await asyncio.sleep(interval * random.uniform(1 - jitter, 1 + jitter))

    await asyncio.gather(*(loop(w) for w in sh.workers))
    await pool.aclose()
    return rec


def _summary(rec: Record, window: dict[str, Any]) -> dict[str, Any]:
    pops = rec.counts.get("pop", 0)
    return {
        "pops": pops, "pops_per_s": pops / window["seconds"] if window["seconds"] else 0.0,
        "latency_ms": percentiles(rec.latencies.get("pop", [])), "errors": dict(rec.errors),
        "unexpected_jobs": rec.counts.get("unexpected_jobs", 0), "window": window,
        "cpu_per_pop": per_op(window, pops),
    }  # fmt: skip


def _print(label: str, summary: dict[str, Any], verdict: str) -> None:
    print(f"{label}: {summary['pops_per_s']:.0f} pops/s {verdict}")
    print(f"  latency {fmt_latency(summary['latency_ms'])}; errors {summary['errors'] or 0}")
    print(f"  {fmt_cpu(summary['cpu_per_pop'], 'pop')}")


async def run(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    flat_n = args.flat_workers if args.part != "paced" else 0
    paced_n = args.paced_workers if args.part != "flat" else 0
    pool = Pool(target.url)
    fleet = await make_fleet(pool, "text", max(flat_n, paced_n), text_pop)
    await warm_up(pool, fleet)
    await pool.aclose()
    result: dict[str, Any] = {"parameters": vars(args) | {"url": target.url}}
    if flat_n:
        shards = [Shard(target.url, workers=s) for s in shard(fleet[:flat_n], args.procs)]
        rec, window = await run_window(target, "bench.s3_idle:flat", shards, seconds=args.seconds)
        summary = result["flat"] = _summary(rec, window)
        verdict = "PASS" if summary["pops_per_s"] >= FLAT_TARGET else "FAIL"
        _print(f"S3a flat, {flat_n} workers", summary, f"[{verdict}: target >= {FLAT_TARGET:.0f}]")
    if paced_n:
        params = {"interval": args.interval, "jitter": args.jitter}
        shards = [Shard(target.url, workers=s, params=params) for s in shard(fleet[:paced_n], args.procs)]
        rec, window = await run_window(target, "bench.s3_idle:paced", shards, seconds=args.seconds)
        summary = result["paced"] = _summary(rec, window)
        p99 = summary["latency_ms"].get("p99", float("inf"))
        verdict = "PASS" if p99 <= PACED_P99_TARGET else "FAIL"
        label = f"S3b paced, {paced_n} workers every {args.interval:g} s"
        _print(label, summary, f"(p99 {p99:.1f} ms) [{verdict}: target p99 <= {PACED_P99_TARGET:.0f} ms]")
    return result
