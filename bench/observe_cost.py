"""What the observing middleware costs an empty pop: server CPU per pop with and without it.

    uv run --frozen python -m bench.observe_cost --seconds 10 --rounds 2
    uv run --frozen python -m bench.observe_cost --micro     # the middleware alone, in-process

Variants, each its own `uvicorn` process on one fresh database, driven by `wrk` with
`bench/wrk/pop.lua` (40 connections, 20 workers popping an empty text queue):
  full       the app as shipped: request ids, JSON-log binding and /metrics series
  no-metrics the middleware with HORDE_METRICS=0 (request ids only)
  none       the app with ObserveMiddleware removed
  bare       a bare Starlette endpoint running one asyncpg UPDATE ... RETURNING (the floor, README)
Rounds interleave the variants so the machine's noise falls on all of them alike. The figure that
matters is server CPU ms per request (utime + stime of the server process over the window).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.local import create_database, drop_database, free_port

VARIANTS = ("full", "no-metrics", "none", "bare")
TICK = os.sysconf("SC_CLK_TCK")
_KEYS: dict[str, str] = {}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _horde_app(variant: str) -> Any:
    from horde.server.app import create_app
    from horde.server.config import Settings
    from horde.server.observe.middleware import ObserveMiddleware

    app = create_app(Settings())
    if variant == "none":
        app.user_middleware = [m for m in app.user_middleware if m.cls is not ObserveMiddleware]
    return app


def _bare_app(dsn: str) -> Any:
    import asyncpg  # type: ignore[import-untyped]
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    pool: Any = None

    async def pop(_request: Any) -> JSONResponse:
        async with pool.acquire() as conn:
            row = await conn.fetchrow("UPDATE bare_counter SET n = n + 1 WHERE id = 1 RETURNING n")
        return JSONResponse({"id": None, "n": row["n"]})

    async def lifespan(_app: Any) -> Any:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20, ssl=False)
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS bare_counter (id int primary key, n bigint)")
            await conn.execute("INSERT INTO bare_counter VALUES (1, 0) ON CONFLICT DO NOTHING")
        yield
        await pool.close()

    routes = [
        Route("/api/v2/generate/text/pop", pop, methods=["POST"]),
        Route("/api/v2/status/heartbeat", pop),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(variant: str, port: int, dsn: str) -> None:
    import uvicorn

    app = _bare_app(dsn) if variant == "bare" else _horde_app(variant)
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning",
                loop="uvloop", http="httptools")  # fmt: skip


def _wrk(url: str, key: str, seconds: float) -> int:
    script = Path(__file__).parent / "wrk" / "pop.lua"
    out = subprocess.run(
        ["wrk", "-t1", "-c40", f"-d{seconds:.0f}s", "-s", str(script), url],
        env={**os.environ, "KEY": key}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"(\d+) requests in", out)
    if not match or "Non-2xx" in out:
        raise RuntimeError(f"wrk: {out}")
    return int(match.group(1))


def _measure(variant: str, dsn: str, seconds: float) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "HORDE_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
           "HORDE_DATA_DIR": f"/tmp/horde-observe-cost-{os.getpid()}", "HORDE_TEST_APIKEYS": "1",
           "HORDE_TEST_RATELIMIT_DISABLED": "1", "HORDE_METRICS": "0" if variant == "no-metrics" else "1",
           "HORDE_PORT": str(port), "HORDE_LOG_FORMAT": "json"}  # fmt: skip
    command = [
        sys.executable,
        "-m",
        "bench.observe_cost",
        "--serve",
        variant,
        "--port",
        str(port),
        "--dsn",
        dsn,
    ]
    log = Path(env["HORDE_DATA_DIR"]) / f"{variant}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url)
        if variant == "bare":
            key = "bare"
        else:  # one owner for every variant: worker names are unique across users
            key = _KEYS.get("owner") or httpx.post(f"{url}/api/v2/dev/test-user", json={}).json()["api_key"]
            _KEYS["owner"] = key
        _wrk(url, key, 3)  # warm-up: the 20 workers are created by their first pops
        before = _cpu_seconds(process.pid)
        count = _wrk(url, key, seconds)
        cpu = _cpu_seconds(process.pid) - before
    finally:
        process.terminate()
        process.wait(15)
    return {
        "variant": variant,
        "requests": count,
        "per_s": round(count / seconds),
        "cpu_ms_per_request": round(cpu * 1000 / count, 4),
    }


def _wait(url: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/status/heartbeat", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


async def _run(seconds: float, rounds: int) -> list[dict[str, Any]]:
    name = f"horde_bench_obs_{os.getpid()}"
    dsn = await create_database(name)
    results: list[dict[str, Any]] = []
    try:
        for round_ in range(rounds):
            order = VARIANTS if round_ % 2 == 0 else tuple(reversed(VARIANTS))
            for variant in order:
                result = {"round": round_, **await asyncio.to_thread(_measure, variant, dsn, seconds)}
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        await drop_database(name)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--micro", action="store_true", help="only the in-process cost of the middleware")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.dsn)
        return
    if args.micro:
        print("CPU µs per request, middleware only (no-op app):", json.dumps(micro()))
        return
    results = asyncio.run(_run(args.seconds, args.rounds))
    for variant in VARIANTS:
        ms = sorted(r["cpu_ms_per_request"] for r in results if r["variant"] == variant)
        print(f"{variant:>10}: server CPU ms/request {ms}")


def micro(n: int = 200_000) -> dict[str, float]:
    """CPU µs per request of the middleware alone: a no-op ASGI app called directly and through it."""
    from horde.server.observe.middleware import ObserveMiddleware

    route = type("Route", (), {"path": "/api/v2/generate/text/pop"})()
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json")],
    }
    body = {"type": "http.response.body", "body": b"{}"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = route
        await send(dict(start))
        await send(body)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(_message: Any) -> None:
        return None

    headers = [(b"host", b"127.0.0.1"), (b"apikey", b"x" * 22), (b"content-type", b"application/json")]

    async def run(target: Any) -> float:
        began = time.process_time()
        for _ in range(n):
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/api/v2/generate/text/pop",
                "headers": headers,
            }
            await target(scope, receive, send)
        return (time.process_time() - began) / n * 1e6

    async def all_variants() -> dict[str, float]:
        variants = {
            "none": app,
            "no-metrics": ObserveMiddleware(app, metrics=False),
            "full": ObserveMiddleware(app, metrics=True),
        }
        result: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(3):  # interleaved, best of three
            for name, target in variants.items():
                result[name].append(await run(target))
        return {name: round(min(times), 2) for name, times in result.items()}

    return asyncio.run(all_variants())


if __name__ == "__main__":
    main()
