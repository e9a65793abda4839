"""Clients and workers of every kind, as S2 (client flood) and S4 (mixed) run them.

A client submits one request, polls its status every `poll` seconds (+- jitter) until it is done,
then submits the next. A worker pops; with a job it submits a result at once, without one it sleeps
`idle` seconds. Requests still open at the deadline are cancelled so no load is left behind.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.common import Record
from bench.media import webp, webp_b64
from bench.net import (
    Identity,
    Pool,
    Shard,
    WorkerSpec,
    async_path,
    call,
    pop_path,
    popped_ids,
    status_path,
    submit_path,
)

KINDS = ("text", "image", "alchemy")
TEXT_MODEL = "bench/text-model-00"
IMAGE_MODEL = "bench/image-model-00"
ALCHEMY_FORMS = ["caption", "nsfw"]
GENERATION = "It was a dark and stormy night; the rain fell in torrents. " * 4


def worker_pop(kind: str) -> dict[str, Any]:
    if kind == "text":
        return {"models": [TEXT_MODEL], "max_length": 512, "max_context_length": 4096, "amount": 1}
    if kind == "image":
        return {"models": [IMAGE_MODEL], "max_pixels": 1024 * 1024, "amount": 1, "nsfw": True}
    return {"forms": [*ALCHEMY_FORMS, "interrogation"], "amount": 1, "max_tiles": 16}


def request_body(kind: str, n: int) -> dict[str, Any]:
    params: dict[str, Any]
    if kind == "text":
        params = {"n": 1, "max_length": 80, "max_context_length": 1024}
        return {"prompt": f"bench flood {n}: tell me a story", "models": [TEXT_MODEL], "params": params}
    if kind == "image":
        params = {"n": 1, "width": 512, "height": 512, "steps": 10, "sampler_name": "k_euler_a"}
        return {"prompt": f"bench flood {n}: a red fox in snow", "models": [IMAGE_MODEL], "params": params,
                "nsfw": False, "censor_nsfw": False, "r2": True}  # fmt: skip
    return {"forms": [{"name": f} for f in ALCHEMY_FORMS], "source_image": webp_b64()}


def is_done(kind: str, status: dict[str, Any]) -> bool:
    if kind == "alchemy":
        return status.get("state") in ("done", "faulted", "cancelled")
    return bool(status.get("done"))


def _results(kind: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(job id, submit body) for every job of a pop answer."""
    if kind == "alchemy":
        answers = {"nsfw": False, "caption": "a small gradient", "interrogation": {"tags": []}}
        return [
            (f["id"], {"id": f["id"], "state": "ok", "result": {f["form"]: answers.get(f["form"], "ok")}})
            for f in body.get("forms") or []
        ]
    if kind == "image":
        seed = int(body["payload"]["seed"])
        return [
            (i, {"id": i, "state": "ok", "generation": "R2", "seed": seed}) for i in popped_ids(kind, body)
        ]
    return [
        (i, {"id": i, "state": "ok", "generation": GENERATION, "seed": 0}) for i in popped_ids(kind, body)
    ]


async def worker_loop(rec: Record, pool: Pool, w: WorkerSpec, deadline: float, idle: float) -> None:
    client = pool.client(w.source)
    op = f"{w.kind}.pop"
    while time.monotonic() < deadline:
        response = await call(rec, op, client, "POST", pop_path(w.kind), key=w.api_key, body=w.pop)
        body = response.json() if response is not None else {}
        jobs = _results(w.kind, body) if popped_ids(w.kind, body) else []
        if response is not None:
            rec.latencies[f"{op}_{'hit' if jobs else 'empty'}"].append(rec.latencies[op][-1])
        if not jobs:
            await asyncio.sleep(idle)
            continue
        if w.kind == "image" and body.get("r2_upload"):
            await call(rec, "image.upload", client, "PUT", body["r2_upload"], content=webp())
        for _, submit in jobs:
            if await call(
                rec, f"{w.kind}.submit", client, "POST", submit_path(w.kind), key=w.api_key, body=submit
            ):
                rec.counts[f"{w.kind}.jobs_done"] += 1


async def client_loop(
    rec: Record, pool: Pool, user: Identity, kind: str, deadline: float, poll: float, jitter: float
) -> None:
    client, n = pool.client(user.source), 0
    await asyncio.sleep(random.uniform(0, poll))
    while time.monotonic() < deadline:
        n += 1
        submitted = time.monotonic()
        response = await call(rec, f"{kind}.async", client, "POST", async_path(kind), key=user.api_key,
                              body=request_body(kind, n))  # fmt: skip
        if response is None:
            await asyncio.sleep(poll)
            continue
        request_id = response.json()["id"]
        if await _poll_until_done(rec, client, kind, request_id, deadline, poll, jitter):
            rec.latencies[f"{kind}.request_done"].append(time.monotonic() - submitted)
            rec.counts[f"{kind}.requests_done"] += 1
        else:
            await client.delete(status_path(kind).replace("check/", "status/") + request_id)
            rec.counts[f"{kind}.requests_open_at_deadline"] += 1


async def _poll_until_done(
    rec: Record, client: Any, kind: str, request_id: str, deadline: float, poll: float, jitter: float
) -> bool:
    while time.monotonic() < deadline:
        await asyncio.sleep(poll * random.uniform(1 - jitter, 1 + jitter))
        response = await call(rec, f"{kind}.status", client, "GET", status_path(kind) + request_id)
        if response is not None and is_done(kind, response.json()):
            if kind == "image":  # the check said done: fetch the results once, as a client does
                await call(rec, "image.status_full", client, "GET", "/api/v2/generate/status/" + request_id)
            return True
    return False


async def mixed(sh: Shard, start_at: float, deadline: float) -> Record:
    """Child: this shard's workers and clients, of whatever kinds, until the deadline."""
    rec = Record()
    pool = Pool(sh.url, connections=len(sh.workers) + len(sh.clients))
    poll, jitter, idle = sh.params["poll"], sh.params["jitter"], sh.params["idle"]
    kinds = sh.params["client_kinds"]
    tasks = [worker_loop(rec, pool, w, deadline, idle) for w in sh.workers]
    tasks += [client_loop(rec, pool, u, kinds[i], deadline, poll, jitter) for i, u in enumerate(sh.clients)]
    await asyncio.gather(*tasks)
    await pool.aclose()
    return rec


async def run_traffic(
    target: Any, args: Any, workers: dict[str, int], clients: dict[str, int]
) -> tuple[Record, dict[str, Any]]:
    """Set up the fleets and client users, then run them all together for `args.seconds`."""
    from bench.net import create_test_user, gather_limited, make_fleet, same_pop, shard, warm_up
    from bench.runner import run_window

    pool = Pool(target.url)
    fleet: list[WorkerSpec] = []
    for kind, count in workers.items():
        if count:
            fleet += await make_fleet(pool, kind, count, same_pop(worker_pop(kind)))
    await warm_up(pool, fleet)
    pairs = [(kind, j) for kind, count in clients.items() for j in range(count)]
    users = await gather_limited(8, (create_test_user(pool, f"bench-{kind}-flood-{j}") for kind, j in pairs))
    await pool.aclose()
    params = {"poll": args.poll_interval, "jitter": args.jitter, "idle": args.worker_idle_sleep}
    parts = max(1, args.procs)
    worker_shards = shard(fleet, parts) if fleet else []
    client_shards = shard(list(zip(users, [k for k, _ in pairs], strict=True)), parts)
    shards = []
    for i in range(parts):
        own = client_shards[i] if i < len(client_shards) else []
        shards.append(Shard(
            target.url, workers=worker_shards[i] if i < len(worker_shards) else [],
            clients=[u for u, _ in own], params={**params, "client_kinds": [k for _, k in own]},
        ))  # fmt: skip
    return await run_window(target, "bench.traffic:mixed", [s for s in shards if s.workers or s.clients],
                            seconds=args.seconds)  # fmt: skip


def summarize(rec: Record, window: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
    """Per kind: throughput and latency of every operation; overall: HTTP requests and CPU."""
    from bench.common import percentiles
    from bench.runner import per_op

    seconds = window["seconds"] or 1.0
    out: dict[str, Any] = {"window": window, "errors": dict(rec.errors)}
    http_requests = sum(n for op, n in rec.counts.items() if op.split(".")[-1] in
                        ("async", "status", "status_full", "pop", "submit", "upload"))  # fmt: skip
    for kind in kinds:
        ops = sorted(op for op in rec.latencies if op.startswith(f"{kind}."))
        out[kind] = {
            "requests_submitted_per_s": rec.counts.get(f"{kind}.async", 0) / seconds,
            "requests_done": rec.counts.get(f"{kind}.requests_done", 0),
            "requests_done_per_s": rec.counts.get(f"{kind}.requests_done", 0) / seconds,
            "jobs_done_per_s": rec.counts.get(f"{kind}.jobs_done", 0) / seconds,
            "polls_per_s": rec.counts.get(f"{kind}.status", 0) / seconds,
            "open_at_deadline": rec.counts.get(f"{kind}.requests_open_at_deadline", 0),
            "latency_ms": {op.split(".", 1)[1]: percentiles(rec.latencies[op]) for op in ops},
        }
    out["http_requests"] = http_requests
    out["http_requests_per_s"] = http_requests / seconds
    out["cpu_per_http_request"] = per_op(window, http_requests)
    done = sum(rec.counts.get(f"{k}.jobs_done", 0) for k in kinds)
    out["cpu_per_completed_job_all_traffic"] = per_op(window, done)
    return out


def print_summary(label: str, s: dict[str, Any], kinds: tuple[str, ...]) -> None:
    from bench.common import fmt_latency
    from bench.runner import fmt_cpu

    print(f"{label}: {s['http_requests_per_s']:.0f} HTTP requests/s over {s['window']['seconds']:.1f} s")
    for kind in kinds:
        k = s[kind]
        print(
            f"  {kind}: submitted {k['requests_submitted_per_s']:.1f}/s, "
            f"done {k['requests_done_per_s']:.1f}/s "
            f"({k['requests_done']}), jobs {k['jobs_done_per_s']:.1f}/s, polls {k['polls_per_s']:.1f}/s, "
            f"open at deadline {k['open_at_deadline']}"
        )
        for op, stats in k["latency_ms"].items():
            print(f"    {op:<16} {fmt_latency(stats)}")
    print(f"  errors {s['errors'] or 0}")
    print(f"  {fmt_cpu(s['cpu_per_http_request'], 'HTTP request')}")
    print(f"  {fmt_cpu(s['cpu_per_completed_job_all_traffic'], 'completed job (all traffic)')}")
