"""S4 mixed: image, text and alchemy clients and workers together.

`--clients-per-kind` (30) clients of each kind submit and poll as in S2 (image clients poll the light
/generate/check/{id} and fetch the full status once done; alchemy requests ask for caption + nsfw on a
small WebP sent inline); `--workers-per-kind` (10) workers of each kind serve them (image workers
upload a small WebP to the r2_upload URL and submit "R2"). Figures only.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.runner import Target
from bench.traffic import KINDS, print_summary, run_traffic, summarize


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients-per-kind", type=int, default=30)
    p.add_argument("--workers-per-kind", type=int, default=10)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--poll-interval", type=float, default=1.0)
    p.add_argument("--jitter", type=float, default=0.1)
    p.add_argument("--worker-idle-sleep", type=float, default=0.2)


async def run(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    workers = dict.fromkeys(KINDS, args.workers_per_kind)
    clients = dict.fromkeys(KINDS, args.clients_per_kind)
    rec, window = await run_traffic(target, args, workers, clients)
    summary = summarize(rec, window, KINDS)
    label = f"S4 mixed, {args.clients_per_kind} clients and {args.workers_per_kind} workers per kind"
    print_summary(label, summary, KINDS)
    return {"parameters": vars(args) | {"url": target.url}, **summary}
