"""S5 paced mixed: text and image workers each pop an empty queue once a second, beside the bare endpoint.

`--workers-per-kind` (100) workers of each kind, each with its own name and `--models-per-worker` (3)
of `--models` (20) models, pop, then sleep `--interval` (1 s) +- `--jitter` (10 %) after the answer
(random first phase), for `--seconds` (30). The same generator, with the same workers and bodies, then
drives the bare endpoint (`bench/bare.py`, POST /pop) for as long. Figures per kind: p50/p99, and the
server CPU per pop. Target (issue 7): each kind's p99 <= max(1.5 x bare p99, bare p99 + 10 ms).
`--wrk` adds the same fleet driven by `wrk` (`bench/wrk/fleet.lua`: one connection per worker name, one
wrk per kind, both at once) against the horde and the bare endpoint; target p99 <= 25 ms for both kinds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bare import WRK_DIR, _wrk_stats, bare_server
from bench.common import Record, fmt_latency, percentiles, process_cpu
from bench.net import Pool, Shard, WorkerSpec, call, fault_popped, make_fleet, pop_path, shard, warm_up
from bench.runner import Target, fmt_cpu, per_op, run_window
from bench.s1_storm import model_names, pop_body, worker_caps

KINDS = ("text", "image")
PROBE_INTERVAL = 5.0  # horde.server.observe.probe.INTERVAL (the bench does not import the server)
WRK_P99_TARGET = 25.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers-per-kind", type=int, default=100)
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--models-per-worker", type=int, default=3)
    p.add_argument("--seconds", type=float, default=30.0, help="length of each window")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--jitter", type=float, default=0.1, help="fraction of the interval")
    p.add_argument("--kinds", choices=("both", "text", "image"), default="both")
    p.add_argument("--wrk", action="store_true", help="also run the wrk variant (Debian's wrk)")
    p.add_argument("--no-bare", action="store_true", help="skip the bare endpoint windows")
    p.add_argument(
        "--probe", default=None, metavar="FILE",
        help="read the pop probe's timings from FILE (local: the bench starts the horde with "
        "HORDE_POP_PROBE=FILE; run: start it so yourself)",
    )  # fmt: skip


def target_p99(bare_p99: float) -> float:
    return max(1.5 * bare_p99, bare_p99 + 10.0)


async def paced(sh: Shard, start_at: float, deadline: float) -> Record:
    """Child: every worker pops, sleeps interval +- jitter after the answer, and again. Latencies are
    recorded per kind; `bare` sends the same body to the bare endpoint's /pop."""
    rec, pool = Record(), Pool(sh.url, connections=len(sh.workers))
    interval, jitter, bare = sh.params["interval"], sh.params["jitter"], sh.params["bare"]

    async def loop(w: WorkerSpec) -> None:
        client = pool.client(w.source)
        path = "/pop" if bare else pop_path(w.kind)
        await asyncio.sleep(random.uniform(0, interval))
        while time.monotonic() < deadline:
            response = await call(rec, w.kind, client, "POST", path, key=w.api_key, body=w.pop)
            if not bare and response is not None and (body := response.json()).get("id"):
                rec.counts["unexpected_jobs"] += await fault_popped(client, w, body, rec)
            await asyncio.sleep(interval * random.uniform(1 - jitter, 1 + jitter))

    await asyncio.gather(*(loop(w) for w in sh.workers))
    await pool.aclose()
    return rec


def _summary(rec: Record, window: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
    pops = sum(rec.counts.get(k, 0) for k in kinds)
    return {
        "pops": pops, "pops_per_s": pops / window["seconds"] if window["seconds"] else 0.0,
        "latency_ms": {k: percentiles(rec.latencies.get(k, [])) for k in kinds},
        "errors": dict(rec.errors), "unexpected_jobs": rec.counts.get("unexpected_jobs", 0),
        "window": window, "cpu_per_pop": per_op(window, pops),
    }  # fmt: skip


def _print(label: str, summary: dict[str, Any]) -> None:
    print(f"{label}: {summary['pops_per_s']:.0f} pops/s; errors {summary['errors'] or 0}")
    for kind, stats in summary["latency_ms"].items():
        print(f"  {kind:5s} {fmt_latency(stats)}")
    print(f"  {fmt_cpu(summary['cpu_per_pop'], 'pop')}")


async def _window(
    target: Target, fleet: list[WorkerSpec], args: argparse.Namespace, bare: bool
) -> tuple[Record, dict[str, Any]]:
    params = {"interval": args.interval, "jitter": args.jitter, "bare": bare}
    shards = [Shard(target.url, workers=s, params=params) for s in shard(fleet, args.procs)]
    return await run_window(target, "bench.s5_paced:paced", shards, seconds=args.seconds)


def _verdicts(horde: dict[str, Any], bare: dict[str, Any] | None, kinds: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in kinds:
        p99 = horde["latency_ms"][kind].get("p99", float("inf"))
        if bare is None:
            continue
        bare_p99 = bare["latency_ms"][kind].get("p99", float("inf"))
        limit = target_p99(bare_p99)
        out[kind] = {"p99": p99, "bare_p99": bare_p99, "ratio": p99 / bare_p99, "limit": limit,
                     "pass": p99 <= limit}  # fmt: skip
        verdict = "PASS" if p99 <= limit else "FAIL"
        print(
            f"  {kind:5s} p99 {p99:.1f} ms vs bare {bare_p99:.1f} ms = {p99 / bare_p99:.2f}x "
            f"[{verdict}: target <= {limit:.1f} ms]"
        )
    return out


def read_probe(path: Path, since: float, until: float) -> dict[str, Any]:
    """The probe's lines written in [since, until] (each covers the INTERVAL before it): per step,
    percentiles of its durations; counts summed."""
    samples: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if not since <= entry["t"] <= until:
            continue
        for step, values in entry["samples"].items():
            samples.setdefault(step, []).extend(v / 1000 for v in values)
        for what, n in entry["counts"].items():
            counts[what] = counts.get(what, 0) + n
    return {"steps": {step: percentiles(v) for step, v in sorted(samples.items())}, "counts": counts}


def print_probe(probe: dict[str, Any]) -> None:
    print("  pop probe (ms per step awaited):")
    for step, stats in probe["steps"].items():
        print(f"    {step:24s} {fmt_latency(stats)}")
    for what, n in sorted(probe["counts"].items()):
        print(f"    {what:24s} {n}")


# --- the wrk variant --------------------------------------------------------------------------------


def _fleet_file(fleet: list[WorkerSpec], bare: bool) -> Path:
    """One line per worker for bench/wrk/fleet.lua: path, key, JSON body (tab-separated)."""
    fd, name = tempfile.mkstemp(prefix="horde-fleet-", suffix=".tsv")
    with os.fdopen(fd, "w") as f:
        for w in fleet:
            f.write(f"{'/pop' if bare else pop_path(w.kind)}\t{w.api_key}\t{json.dumps(w.pop)}\n")
    return Path(name)


async def wrk_fleet(
    url: str, pid: int, fleet: list[WorkerSpec], *, seconds: float, bare: bool
) -> dict[str, Any]:
    """One wrk per kind at once, one thread and connection per worker (fleet.lua); latency per kind
    and the server's CPU per pop over both."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    by_kind = {k: [w for w in fleet if w.kind == k] for k in KINDS}
    files = {k: _fleet_file(ws, bare) for k, ws in by_kind.items() if ws}
    commands = {
        k: [wrk, f"-t{len(by_kind[k])}", f"-c{len(by_kind[k])}", f"-d{seconds:.0f}s", "--latency",
            "-s", str(WRK_DIR / "fleet.lua"), url]
        for k in files
    }  # fmt: skip

    def run(kind: str) -> str:
        env = {**os.environ, "FLEET": str(files[kind])}
        return subprocess.run(commands[kind], capture_output=True, text=True, env=env, check=True).stdout

    before, began = process_cpu(pid), time.monotonic()
    try:
        outputs = await asyncio.gather(*(asyncio.to_thread(run, k) for k in files))
    finally:
        for path in files.values():
            path.unlink(missing_ok=True)
    elapsed, cpu = time.monotonic() - began, process_cpu(pid) - before
    stats = {k: _wrk_stats(out) for k, out in zip(files, outputs, strict=True)}
    errors = {k: line.strip() for k, out in zip(files, outputs, strict=True) for line in out.splitlines()
              if "Non-2xx" in line or "Socket errors" in line}  # fmt: skip
    pops = sum(s["requests"] for s in stats.values())
    return {"latency_ms": stats, "pops": pops, "seconds": elapsed, "server_ms": cpu / (pops or 1) * 1000,
            "errors": errors}  # fmt: skip


def _print_wrk(label: str, result: dict[str, Any]) -> None:
    print(f"{label}: {result['pops'] / result['seconds']:.0f} pops/s; server {result['server_ms']:.3f} "
          f"ms CPU/pop; errors {result['errors'] or 0}")  # fmt: skip
    for kind, s in result["latency_ms"].items():
        print(f"  {kind:5s} n={s['requests']:.0f} p50={s.get('p50_ms', 0):.1f} p90={s.get('p90_ms', 0):.1f} "
              f"p99={s.get('p99_ms', 0):.1f} ms")  # fmt: skip


async def run(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    kinds = list(KINDS) if args.kinds == "both" else [args.kinds]
    pool = Pool(target.url)
    fleet: list[WorkerSpec] = []
    for kind in kinds:
        names = model_names(kind, args.models)

        def body(i: int, kind: str = kind, names: list[str] = names) -> dict[str, Any]:
            return pop_body(kind, worker_caps(kind, i, names, args.models_per_worker))

        fleet += await make_fleet(pool, kind, args.workers_per_kind, body)
    await warm_up(pool, fleet)
    await pool.aclose()
    result: dict[str, Any] = {"parameters": vars(args) | {"url": target.url}}
    label = f"S5 paced, {args.workers_per_kind} per kind ({'+'.join(kinds)}) every {args.interval:g} s"
    began = time.time()
    rec, window = await _window(target, fleet, args, bare=False)
    horde = result["horde"] = _summary(rec, window, kinds)
    _print(f"{label}, horde", horde)
    if args.probe:
        await asyncio.sleep(PROBE_INTERVAL + 0.5)  # the probe's line covering the window's end
        result["probe"] = read_probe(Path(args.probe), began + PROBE_INTERVAL, time.time())
        print_probe(result["probe"])
    if args.no_bare and not args.wrk:
        return result
    async with bare_server() as (bare_url, bare_pid, _dsn):
        bare_target = Target(bare_url, bare_pid)
        bare: dict[str, Any] | None = None
        if not args.no_bare:
            rec, window = await _window(bare_target, fleet, args, bare=True)
            bare = result["bare"] = _summary(rec, window, kinds)
            _print(f"{label}, bare endpoint", bare)
            result["verdict"] = _verdicts(horde, bare, kinds)
        if args.wrk and target.server_pid:
            await wrk_fleet(target.url, target.server_pid, fleet, seconds=3, bare=False)  # wrk's IP
            horde_wrk = result["wrk_horde"] = await wrk_fleet(
                target.url, target.server_pid, fleet, seconds=args.seconds, bare=False
            )
            _print_wrk("S5 wrk, horde", horde_wrk)
            bare_wrk = result["wrk_bare"] = await wrk_fleet(
                bare_url, bare_pid, fleet, seconds=args.seconds, bare=True
            )
            _print_wrk("S5 wrk, bare endpoint", bare_wrk)
            verdict = {}
            for kind, s in horde_wrk["latency_ms"].items():
                p99 = s.get("p99_ms", float("inf"))
                verdict[kind] = {"p99": p99, "pass": p99 <= WRK_P99_TARGET}
                print(f"  {kind:5s} wrk p99 {p99:.1f} ms [{'PASS' if p99 <= WRK_P99_TARGET else 'FAIL'}: "
                      f"target <= {WRK_P99_TARGET:.0f} ms]")  # fmt: skip
            result["wrk_verdict"] = verdict
    return result
