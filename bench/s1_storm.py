"""S1 worker storm: a full queue drained by many workers; completed jobs/s and zero wrong matches.

Text: `--requests` (10,000) requests over `--models` (20) models; by index mod 4 a request needs
(max_length, max_context_length) = (80, 1024) [small], (256, 1024), (96, 2048) or (512, 4096); every
fifth request names a second model. `--workers` (100) workers serve `--models-per-worker` (3) models
each; every fourth worker declares small limits (128, 1024) and so may take only the small quarter.
Image: the same with sizes 512x512 [small], 512x768, 768x768, 1024x1024 and a quarter of the workers
at max_pixels 512x512 (the rest 1024x1024).
Workers pop and submit without pause until `--empty-streak` empty pops in a row (the queue is drained
for them) or `--seconds`. Every popped job is checked against what the bench queued (request found by
the `bench#<index>` its prompt starts with): model requested and served, limits within the worker's,
payload as sent, and no request handed out twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

from bench.common import Record, fmt_latency, percentiles
from bench.media import webp
from bench.net import (
    Identity,
    Pool,
    Shard,
    WorkerSpec,
    async_path,
    call,
    clients_for,
    gather_limited,
    make_fleet,
    pop_path,
    shard,
    submit_path,
    warm_up,
)
from bench.runner import Target, fmt_cpu, measure, per_op, run_window

TARGET_JOBS_PER_S = 300.0
TEXT_CLASSES = [(80, 1024), (256, 1024), (96, 2048), (512, 4096)]  # index mod 4; 0 is the small quarter
TEXT_WORKER = {"big": (512, 4096), "small": (128, 1024)}
IMAGE_SIZES = [(512, 512), (512, 768), (768, 768), (1024, 1024)]
IMAGE_WORKER = {"big": 1024 * 1024, "small": 512 * 512}
OPS = ("pop_hit", "pop_empty", "submit", "upload")
GENERATION = "The quick brown fox jumps over the lazy dog. " * 8


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=("text", "image", "both"), default="both")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--workers", type=int, default=100)
    p.add_argument("--models-per-worker", type=int, default=3)
    p.add_argument("--seconds", type=float, default=120.0, help="longest drain window")
    p.add_argument("--empty-streak", type=int, default=5, help="empty pops in a row that stop a worker")
    p.add_argument("--empty-sleep", type=float, default=0.05)
    p.add_argument("--enqueue-concurrency", type=int, default=32)
    p.add_argument("--no-image-upload", action="store_true", help="submit 'R2' without uploading an image")


def model_names(kind: str, count: int) -> list[str]:
    return [f"bench/{kind}-model-{m:02d}" for m in range(count)]


def worker_models(i: int, names: list[str], per_worker: int) -> list[str]:
    return list(dict.fromkeys(names[(i + 7 * j) % len(names)] for j in range(per_worker)))


def request_models(idx: int, names: list[str]) -> list[str]:
    first = (idx * 7) % len(names)
    return [names[first], names[(first + 3) % len(names)]] if idx % 5 == 4 else [names[first]]


def request_spec(kind: str, idx: int, names: list[str]) -> dict[str, Any]:
    """What the bench queues for request `idx` (and later checks popped jobs against)."""
    spec: dict[str, Any] = {"models": request_models(idx, names)}
    if kind == "text":
        spec["max_length"], spec["max_context_length"] = TEXT_CLASSES[idx % 4]
    else:
        spec["width"], spec["height"] = IMAGE_SIZES[idx % 4]
    return spec


def request_body(kind: str, run: str, idx: int, spec: dict[str, Any]) -> dict[str, Any]:
    """The POST body of request `idx`; its prompt starts with `bench#<run>#<idx>`."""
    if kind == "text":
        params = {"n": 1, "max_length": spec["max_length"], "max_context_length": spec["max_context_length"]}
        return {"prompt": f"bench#{run}#{idx} Once upon a time", "models": spec["models"], "params": params}
    params = {
        "n": 1,
        "width": spec["width"],
        "height": spec["height"],
        "steps": 10,
        "sampler_name": "k_euler_a",
    }
    return {
        "prompt": f"bench#{run}#{idx} a lighthouse on a cliff", "models": spec["models"], "params": params,
        "nsfw": False, "censor_nsfw": False, "r2": True,
    }  # fmt: skip


def worker_caps(kind: str, i: int, names: list[str], per_worker: int) -> dict[str, Any]:
    size = "small" if i % 4 == 3 else "big"
    caps: dict[str, Any] = {"models": worker_models(i, names, per_worker), "size": size}
    if kind == "text":
        caps["max_length"], caps["max_context_length"] = TEXT_WORKER[size]
    else:
        caps["max_pixels"] = IMAGE_WORKER[size]
    return caps


def pop_body(kind: str, caps: dict[str, Any]) -> dict[str, Any]:
    body = {"models": caps["models"], "amount": 1, "threads": 1, "nsfw": True}
    if kind == "text":
        return {**body, "max_length": caps["max_length"], "max_context_length": caps["max_context_length"]}
    return {**body, "max_pixels": caps["max_pixels"]}


def can_serve(kind: str, caps: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """Why a worker with `caps` must not get a job of `spec` (empty: it may)."""
    problems = []
    if not set(spec["models"]) & set(caps["models"]):
        problems.append("models")
    if kind == "text":
        if spec["max_length"] > caps["max_length"]:
            problems.append("max_length")
        if spec["max_context_length"] > caps["max_context_length"]:
            problems.append("max_context_length")
    elif spec["width"] * spec["height"] > caps["max_pixels"]:
        problems.append("max_pixels")
    return problems


def request_index(run: str, prompt: str) -> int | None:
    tag, _, idx = prompt.split(" ", 1)[0].rpartition("#")
    return int(idx) if tag == f"bench#{run}" and idx.isdigit() else None


def check_job(
    kind: str, run: str, w: WorkerSpec, expected: dict[int, dict[str, Any]], body: dict[str, Any]
) -> int | str:
    """The request index of a popped job, or a description of what is wrong with it."""
    payload = body.get("payload") or {}
    idx = request_index(run, str(payload.get("prompt", "")))
    if idx is None or idx not in expected:
        return "foreign"
    spec = expected[idx]
    problems = can_serve(kind, w.caps, spec)
    model = body.get("model")
    if model not in spec["models"] or model not in w.caps["models"]:
        problems.append(f"model {model!r}")
    echoed = ("max_length", "max_context_length") if kind == "text" else ("width", "height")
    problems += [f"payload {k}" for k in echoed if payload.get(k) != spec[k]]
    if len(body.get("ids") or []) != 1:
        problems.append(f"ids {body.get('ids')}")
    if problems:
        return f"request {idx} {spec} to worker {w.name} {w.caps}: {', '.join(problems)}"
    return idx


async def storm(sh: Shard, start_at: float, deadline: float) -> Record:
    """Child: pop, check and submit without pause until drained (for this worker) or the deadline."""
    rec, pool = Record(), Pool(sh.url, connections=len(sh.workers))
    kind, run, expected, upload = (
        sh.params["kind"],
        sh.params["run"],
        sh.params["expected"],
        sh.params["upload"],
    )
    streak_limit, empty_sleep = sh.params["empty_streak"], sh.params["empty_sleep"]
    last_submit = 0.0

    async def submit(w: WorkerSpec, body: dict[str, Any]) -> bool:
        client = pool.client(w.source)
        done = {"id": body["id"], "state": "ok", "generation": GENERATION, "seed": 0}
        if kind == "image":
            done = {"id": body["id"], "state": "ok", "generation": "R2", "seed": int(body["payload"]["seed"])}
            if upload and body.get("r2_upload"):
                await call(rec, "upload", client, "PUT", body["r2_upload"], content=webp())
        return (
            await call(rec, "submit", client, "POST", submit_path(kind), key=w.api_key, body=done) is not None
        )

    async def loop(w: WorkerSpec) -> None:
        nonlocal last_submit
        client, streak = pool.client(w.source), 0
        while time.monotonic() < deadline and streak < streak_limit:
            began = time.monotonic() - start_at
            response = await call(rec, "pop", client, "POST", pop_path(kind), key=w.api_key, body=w.pop)
            body = response.json() if response is not None else {}
            if not body.get("id"):
                streak += 1
                if response is not None:
                    rec.latencies["pop_empty"].append(rec.latencies["pop"][-1])
                    rec.values["empty"].append((w.index, began, time.monotonic() - start_at))
                await asyncio.sleep(empty_sleep)
                continue
            streak = 0
            rec.latencies["pop_hit"].append(rec.latencies["pop"][-1])
            verdict = check_job(kind, run, w, expected, body)
            if isinstance(verdict, int):
                rec.values["popped"].append(verdict)
                rec.values["hit"].append((verdict, began))
            elif verdict == "foreign":
                rec.counts["foreign"] += 1
            else:
                rec.values["wrong"].append(verdict)
            if await submit(w, body):
                rec.counts["completed"] += 1
                last_submit = time.monotonic()

    await asyncio.gather(*(loop(w) for w in sh.workers))
    await pool.aclose()
    rec.values["last_submit"].append(last_submit)
    return rec


async def _enqueue(
    pool: Pool,
    kind: str,
    run: str,
    specs: dict[int, dict[str, Any]],
    clients: list[Identity],
    concurrency: int,
) -> tuple[dict[int, dict[str, Any]], Record]:
    rec = Record()
    per_client = max(1, -(-len(specs) // len(clients)))

    async def one(idx: int, spec: dict[str, Any]) -> int | None:
        user = clients[idx // per_client]
        response = await call(
            rec, "async", pool.client(user.source), "POST", async_path(kind), key=user.api_key,
            body=request_body(kind, run, idx, spec),
        )  # fmt: skip
        return idx if response is not None else None

    queued = await gather_limited(concurrency, (one(i, s) for i, s in specs.items()))
    return {i: specs[i] for i in queued if i is not None}, rec


async def run_kind(target: Target, args: argparse.Namespace, kind: str) -> dict[str, Any]:
    names = model_names(kind, args.models)
    pool = Pool(target.url)
    fleet = await make_fleet(
        pool, kind, args.workers,
        pop_body=lambda i: pop_body(kind, worker_caps(kind, i, names, args.models_per_worker)),
        caps=lambda i: worker_caps(kind, i, names, args.models_per_worker),
    )  # fmt: skip
    await warm_up(pool, fleet)
    specs = {idx: request_spec(kind, idx, names) for idx in range(args.requests)}
    unservable = [i for i, s in specs.items() if all(can_serve(kind, w.caps, s) for w in fleet)]
    run = uuid.uuid4().hex[:6]  # in prompts and client names: earlier runs' leftovers are not ours
    clients = await clients_for(pool, args.requests, prefix=f"bench-{kind}-client-{run}")
    (expected, enq), enq_window = await measure(
        target, _enqueue(pool, kind, run, specs, clients, args.enqueue_concurrency)
    )
    await pool.aclose()
    params = {"kind": kind, "run": run, "expected": expected, "upload": not args.no_image_upload,
              "empty_streak": args.empty_streak, "empty_sleep": args.empty_sleep}  # fmt: skip
    shards = [Shard(target.url, workers=s, params=params) for s in shard(fleet, args.procs)]
    rec, window = await run_window(target, "bench.s1_storm:storm", shards, seconds=args.seconds)
    summary = _summary(kind, expected, unservable, enq, enq_window, rec, window)
    summary["missed_pops"], summary["missed_examples"] = missed_pops(kind, fleet, expected, rec)
    return summary


def missed_pops(
    kind: str, fleet: list[WorkerSpec], expected: dict[int, dict[str, Any]], rec: Record
) -> tuple[int, list[str]]:
    """Empty pops answered while a job this worker could take was still queued.

    Nothing is queued during the drain, so a job of request r popped (by anyone) after an empty pop
    of worker w had ended was queued all through that empty pop.
    """
    last_by_spec: dict[str, float] = {}
    specs: dict[str, dict[str, Any]] = {}
    for idx, began in rec.values.get("hit", []):
        key = json.dumps(expected[idx], sort_keys=True)
        specs[key] = expected[idx]
        last_by_spec[key] = max(last_by_spec.get(key, -1.0), began)
    workers = {w.index: w for w in fleet}
    last_servable = {
        w.index: max(
            (t for k, t in last_by_spec.items() if not can_serve(kind, w.caps, specs[k])), default=-1.0
        )
        for w in fleet
    }
    missed = [(i, s, e) for i, s, e in rec.values.get("empty", []) if e < last_servable[i]]
    examples = [
        f"{workers[i].name} {workers[i].caps}: empty pop at {s:.2f}-{e:.2f} s, servable job popped at "
        f"{last_servable[i]:.2f} s"
        for i, s, e in missed[:5]
    ]
    return len(missed), examples


def _summary(
    kind: str,
    expected: dict[int, Any],
    unservable: list[int],
    enq: Record,
    enq_window: dict[str, Any],
    rec: Record,
    window: dict[str, Any],
) -> dict[str, Any]:
    popped = rec.values.get("popped", [])
    twice = sum(n - 1 for n in Counter(popped).values() if n > 1)
    completed = rec.counts.get("completed", 0)
    drain = max(rec.values.get("last_submit", [0.0])) - rec.first if completed else 0.0
    accepted = len(expected)
    return {
        "queued": accepted, "unservable_by_construction": len(unservable),
        "enqueue": {
            "requests_per_s": accepted / enq_window["seconds"] if enq_window["seconds"] else 0.0,
            "latency_ms": percentiles(enq.latencies.get("async", [])), "errors": dict(enq.errors),
            "window": enq_window, "cpu_per_request": per_op(enq_window, accepted),
        },
        "completed": completed, "left": accepted - len(set(popped)), "drain_seconds": drain,
        "jobs_per_s": completed / drain if drain else 0.0,
        "wrong_matches": len(rec.values.get("wrong", [])) + twice, "handed_out_twice": twice,
        "wrong_examples": rec.values.get("wrong", [])[:10], "foreign_jobs": rec.counts.get("foreign", 0),
        "latency_ms": {op: percentiles(rec.latencies.get(op, [])) for op in OPS},
        "errors": dict(rec.errors), "window": window, "cpu_per_completed_job": per_op(window, completed),
        "pops": rec.counts.get("pop", 0), "empty_pops": len(rec.values.get("empty", [])),
    }  # fmt: skip


def _print(kind: str, s: dict[str, Any]) -> None:
    e = s["enqueue"]
    print(
        f"S1 {kind}: queued {s['queued']} requests at {e['requests_per_s']:.0f}/s "
        f"(async {fmt_latency(e['latency_ms'])}; errors {e['errors'] or 0})"
    )
    print(f"  {fmt_cpu(e['cpu_per_request'], 'queued request')}")
    verdict = "PASS" if s["jobs_per_s"] >= TARGET_JOBS_PER_S else "FAIL"
    print(
        f"  drained {s['completed']} jobs in {s['drain_seconds']:.1f} s: {s['jobs_per_s']:.0f} jobs/s "
        f"[{verdict}: target >= {TARGET_JOBS_PER_S:.0f}]; left in queue {s['left']}"
    )
    verdict = "PASS" if s["wrong_matches"] == 0 else "FAIL"
    print(
        f"  wrong matches {s['wrong_matches']} [{verdict}: target 0] "
        f"(handed out twice {s['handed_out_twice']}, "
        f"foreign jobs {s['foreign_jobs']}, unservable by construction {s['unservable_by_construction']})"
    )
    for example in s["wrong_examples"][:3]:
        print(f"    {example}")
    for op, stats in s["latency_ms"].items():
        if stats.get("n"):
            print(f"  {op}: {fmt_latency(stats)}")
    print(
        f"  errors {s['errors'] or 0}; pops {s['pops']}, empty {s['empty_pops']}, "
        f"missed (empty while servable work was queued) {s['missed_pops']}"
    )
    for example in s["missed_examples"][:2]:
        print(f"    {example}")
    what = "completed job (pop + submit" + (" + upload)" if kind == "image" else ")")
    print(f"  {fmt_cpu(s['cpu_per_completed_job'], what)}")


async def run(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"parameters": vars(args) | {"url": target.url}}
    for kind in ("text", "image") if args.kind == "both" else (args.kind,):
        try:
            result[kind] = await run_kind(target, args, kind)
        except RuntimeError as exc:  # an unhealthy horde: keep what the other kind measured
            print(f"S1 {kind}: FAILED: {exc}")
            result[kind] = {"error": str(exc)}
            continue
        _print(kind, result[kind])
    return result
