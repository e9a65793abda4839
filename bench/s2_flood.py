"""S2 client flood: `--clients` (100) clients submit text requests and poll them, a few workers serve.

Each client submits one request (n=1), polls GET /generate/text/status/{id} every `--poll-interval`
(1 s, +- `--jitter`) until done, and submits the next; `--workers` (5) text workers pop without pause
while there is work (sleeping `--worker-idle-sleep` after an empty pop). Figures only: request and
poll latencies, submitted/completed requests per second, CPU per HTTP request.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.runner import Target
from bench.traffic import print_summary, run_traffic, summarize


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--workers", type=int, default=5)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--poll-interval", type=float, default=1.0)
    p.add_argument("--jitter", type=float, default=0.1)
    p.add_argument("--worker-idle-sleep", type=float, default=0.2)


async def run(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    rec, window = await run_traffic(target, args, {"text": args.workers}, {"text": args.clients})
    summary = summarize(rec, window, ("text",))
    print_summary(f"S2 client flood, {args.clients} clients, {args.workers} workers", summary, ("text",))
    return {"parameters": vars(args) | {"url": target.url}, **summary}
