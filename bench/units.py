"""`python -m bench.units`: the bare unit and the horde's figures in bare units, in one run.

1. the bare endpoint (`bench/bare.py`) under wrk: server CPU ms per request = 1 bare unit;
2. a local horde's empty text pops under wrk (`bench/wrk/pop.lua`, warm-up window first);
3. optionally S1 (`--s1-requests N`): `python -m bench local s1 ...`, its queued-request and
   completed-job CPU divided by the unit.
Ratios, not milliseconds, compare across hours on a shared machine (bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

import httpx

from bench import local
from bench.bare import measure_bare, wrk_window
from bench.common import RESULTS, save


async def _horde_pops(seconds: float, connections: int) -> dict[str, Any]:
    server = await local.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            key = (await client.post("/api/v2/dev/test-user", json={})).json()["api_key"]
        env = {"KEY": key}
        await wrk_window(
            url=server.url, pid=server.pid, script="pop.lua", seconds=3, connections=connections, env=env
        )
        return await wrk_window(
            url=server.url,
            pid=server.pid,
            script="pop.lua",
            seconds=seconds,
            connections=connections,
            env=env,
        )
    finally:
        await local.stop(server)


def _s1(kind: str, requests: int, seconds: int) -> dict[str, Any]:
    from bench.__main__ import main

    before = set(RESULTS.glob("s1-*.json"))
    main(["local", "s1", "--kind", kind, "--requests", str(requests), "--seconds", str(seconds)])
    latest = max(set(RESULTS.glob("s1-*.json")) - before, key=os.path.getmtime)
    result: dict[str, Any] = json.loads(latest.read_text())
    return result


def _find(tree: Any, key: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                found.append((k, v))
            else:
                found += [(f"{k}.{path}", value) for path, value in _find(v, key)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.units", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk window (bare and pops)")
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--s1-requests", type=int, default=0, help="also run S1 with this many requests")
    parser.add_argument("--s1-seconds", type=int, default=60)
    parser.add_argument("--s1-kind", default="text")
    args = parser.parse_args()
    bare = asyncio.run(measure_bare(seconds=args.seconds, connections=args.connections))
    unit = bare["server_ms"]
    print(f"bare endpoint: {bare['per_s']:.0f} req/s, server {unit:.3f} ms CPU/request (1 bare unit)")
    pops = asyncio.run(_horde_pops(args.seconds, args.connections))
    print(
        f"empty text pop: {pops['per_s']:.0f} pops/s, p99 {pops.get('p99_ms', 0):.1f} ms, server "
        f"{pops['server_ms']:.3f} ms CPU/pop = {pops['server_ms'] / unit:.2f} bare units"
    )
    result: dict[str, Any] = {"bare": bare, "empty_pop": pops, "empty_pop_units": pops["server_ms"] / unit}
    if args.s1_requests:
        s1 = _s1(args.s1_kind, args.s1_requests, args.s1_seconds)
        for path, cost in _find(s1, "server_ms"):
            if cost is not None:
                print(f"S1 {path}: server {cost:.3f} ms = {cost / unit:.2f} bare units")
                result[f"s1.{path}.units"] = cost / unit
        result["s1"] = s1
    print(f"saved {save('units', result)}")


if __name__ == "__main__":
    main()
