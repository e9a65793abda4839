"""The bare endpoint: the unit every server CPU figure is divided by (bench/README.md, "Bare units").

A Starlette app under uvicorn (uvloop, httptools, no access log: as `horde serve` runs) whose one
route answers a POST with one asyncpg `UPDATE ... RETURNING` that claims nothing from an empty queue
table, the floor of an empty pop. `measure_bare` starts it on a database of its own, drives it with
`wrk` (`bench/wrk/bare.lua`) and reads the process's CPU time; `wrk_window` does the same for any
process and script (the horde's empty pops: `bench/wrk/pop.lua`).

Run as the app: `BARE_DSN=postgresql://... uvicorn bench.bare:app` (what `measure_bare` spawns).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench import local
from bench.common import process_cpu

WRK_DIR = Path(__file__).resolve().parent / "wrk"
_CLAIM = (
    "UPDATE bare_jobs SET state = 'processing' WHERE id = (SELECT id FROM bare_jobs WHERE state = 'queued' "
    "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bare_jobs (id bigserial PRIMARY KEY, state text NOT NULL);"
    "CREATE INDEX IF NOT EXISTS bare_jobs_queued ON bare_jobs (id) WHERE state = 'queued'"
)


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BARE_DSN"], min_size=10, max_size=10)
    try:
        yield
    finally:
        await app.state.pool.close()


async def _pop(request: Request) -> JSONResponse:
    await request.body()
    async with request.app.state.pool.acquire() as conn:
        row = await conn.fetchrow(_CLAIM)
    return JSONResponse({"id": None if row is None else row["id"], "skipped": {}})


app = Starlette(routes=[Route("/pop", _pop, methods=["POST"])], lifespan=_lifespan)


def _wrk_stats(output: str) -> dict[str, float]:
    requests = re.search(r"(\d+) requests in", output)
    latencies: dict[str, float] = {}
    for pct, value, unit in re.findall(r"^\s+(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        latencies[f"p{pct}_ms"] = float(value) * scale
    return {"requests": float(requests.group(1)) if requests else 0.0, **latencies}


async def wrk_window(
    *, url: str, pid: int, script: str, seconds: float, connections: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run wrk with `script` against `url` and return requests, requests/s, latencies and the CPU
    milliseconds process `pid` spent per request."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds:.0f}s",
        "--latency",
        "-s",
        str(WRK_DIR / script),
        url,
    ]
    before, began = process_cpu(pid), time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=True
    )
    elapsed, cpu = time.monotonic() - began, process_cpu(pid) - before
    stats = _wrk_stats(done.stdout)
    count = stats["requests"] or 1.0
    return {
        **stats,
        "per_s": stats["requests"] / elapsed,
        "server_ms": cpu / count * 1000,
        "seconds": elapsed,
    }


@asynccontextmanager
async def bare_server() -> AsyncIterator[tuple[str, int, str]]:
    """The bare endpoint on a database of its own: (url, pid, asyncpg DSN); stopped and dropped after."""
    name = f"horde_bare_{uuid.uuid4().hex[:8]}"
    dsn = await local.create_database(name)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_SCHEMA)
    finally:
        await conn.close()
    port = local.free_port()
    log_path = Path(tempfile.mkdtemp(prefix="horde-bare-")) / "bare.log"
    command = [
        sys.executable, "-m", "uvicorn", "bench.bare:app", "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "BARE_DSN": dsn, "PYTHONPATH": str(WRK_DIR.parents[1])}
    process = local._spawn(command, env, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait(url, process)
        yield url, process.pid, dsn
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
        await local.drop_database(name)
        shutil.rmtree(log_path.parent, ignore_errors=True)


async def measure_bare(*, seconds: float = 10.0, connections: int = 40) -> dict[str, Any]:
    """The bare endpoint's server CPU per request (ms) and rate under wrk, on a database of its own."""
    async with bare_server() as (url, pid, _dsn):
        await wrk_window(url=url, pid=pid, script="bare.lua", seconds=2, connections=connections)
        return await wrk_window(url=url, pid=pid, script="bare.lua", seconds=seconds, connections=connections)


async def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the bare endpoint exited")
            try:
                if (await client.post("/pop", content=b"{}")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the bare endpoint did not answer")
