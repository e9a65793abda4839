"""Redis traffic per API request with the answer cache's local tier on and off (ADR 0026, issue 14).

    nice uv run python -m bench.cache_traffic [--seconds 10] [--clients-per-kind 3]
        [--workers-per-kind 3] [--readers 20]

For each mode (local tier 1 s, then 0 s = off) it starts a private `redis-server` on a free port (its
INFO counts only this run), two `horde serve` nodes on one fresh PostgreSQL database and data dir, and
runs the mixed traffic (S4's clients and workers, against node A) while `--readers` dashboards poll the
hot lists (models, performance, heartbeat, workers, teams; workers also as their owner) on both nodes once a
second. Before and after the window it reads Redis's INFO (commandstats, total_net_input_bytes,
total_net_output_bytes) and both nodes' request counts from /metrics, and prints Redis commands and
bytes per API request, the cache's own commands (hget/hset/expire/del) apart from the relay's publishes.

Staleness: through the window a probe renames a team on node A every half second and polls node B
until its GET /teams/{id} shows the new name; the largest delay is the staleness observed for an
invalidated object (the other cached answers are bounded by their TTLs, ADR 0026).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from bench import local
from bench.net import Pool, create_test_user
from bench.runner import Target
from bench.s4_mixed import add_arguments as s4_arguments
from bench.traffic import KINDS, run_traffic

CACHE_COMMANDS = ("hget", "hset", "expire", "del")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [
        str(shutil.which("redis-server")), "--port", str(port), "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no", "--dir", str(data_dir),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


async def _redis_counts(url: str) -> dict[str, float]:
    client = aioredis.from_url(url)
    try:
        stats = await client.info("commandstats")
        info = await client.info("stats")
    finally:
        await client.aclose()
    counts = {name.removeprefix("cmdstat_"): float(v["calls"]) for name, v in stats.items()}
    counts["bytes_in"] = float(info["total_net_input_bytes"])
    counts["bytes_out"] = float(info["total_net_output_bytes"])
    return counts


async def _api_requests(urls: list[str]) -> float:
    total = 0.0
    async with httpx.AsyncClient(timeout=10) as http:
        for url in urls:
            text = (await http.get(f"{url}/metrics")).text
            for line in text.splitlines():
                if line.startswith("horde_http_request_duration_seconds_count"):
                    total += float(line.rsplit(" ", 1)[1])
    return total


async def _reader(urls: list[str], key: str, team_id: str, deadline: float, pause: float) -> int:
    paths = [
        "/api/v2/status/models?type=image", "/api/v2/status/models?type=text", "/api/v2/status/performance",
        "/api/v2/status/heartbeat", "/api/v2/workers?type=image", "/api/v2/teams", f"/api/v2/teams/{team_id}",
    ]  # fmt: skip
    done = 0
    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.sleep(random.uniform(0, 1))
        while time.monotonic() < deadline:
            url = random.choice(urls)
            for path in paths:
                await http.get(url + path)
            await http.get(url + "/api/v2/workers?type=text", headers={"apikey": key})  # the owner's view
            done += len(paths) + 1
            await asyncio.sleep(pause)
    return done


async def _staleness_probe(
    a: str, b: str, key: str, team_id: str, deadline: float, interval: float
) -> tuple[list[float], list[float]]:
    """(delays, poll latencies): a delay is from the rename's answer on A to the start of the first
    poll of B that showed the new name; a poll's latency says how fine-grained that figure is."""
    delays: list[float] = []
    polls: list[float] = []
    async with httpx.AsyncClient(timeout=30, headers={"apikey": key}) as http:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            name = f"Probe Team {n}"
            renamed = await http.patch(f"{a}/api/v2/teams/{team_id}", json={"name": name})
            written = time.monotonic()
            if renamed.status_code != 200:
                raise RuntimeError(f"rename answered {renamed.status_code}: {renamed.text}")
            for _ in range(2000):  # at most about 10 s
                started = time.monotonic()
                seen = (await http.get(f"{b}/api/v2/teams/{team_id}")).json().get("name")
                polls.append(time.monotonic() - started)
                if seen == name:
                    break
                await asyncio.sleep(0.005)
            delays.append(started - written)
            await asyncio.sleep(interval)
    return delays, polls


async def _second_node(
    a: local.LocalServer, env_extra: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = local.free_port()
    env = {
        **os.environ,
        "HORDE_DATABASE_URL": a.db_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        "HORDE_DATA_DIR": str(a.data_dir),  # one local store for both nodes (ADR 0012)
        "HORDE_TEST_APIKEYS": "1",
        "HORDE_TEST_RATELIMIT_DISABLED": "1",
        **env_extra,
    }
    log = a.data_dir / "server-b.log"
    process = local._spawn(
        [*local.horde_command(), "serve", "--host", "127.0.0.1", "--port", str(port)], env, log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{url}/api/v2/status/heartbeat")).status_code == 200:
                    return process, url
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    process.kill()
    raise RuntimeError(f"node B did not start: {log.read_text()[-2000:]}")


async def one_mode(args: argparse.Namespace, local_ttl: float) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="horde-cache-bench-"))
    redis_process, redis_url = _start_redis(scratch)
    env = {"HORDE_REDIS_URL": redis_url, "HORDE_CACHE_LOCAL_TTL": str(local_ttl), "HORDE_DB_POOL_SIZE": "8"}
    a = await local.start(env)
    b_process, b_url = await _second_node(a, env)
    try:
        pool = Pool(a.url)
        owner = await create_test_user(pool, "cache-bench-owner")
        await pool.aclose()
        async with httpx.AsyncClient(timeout=30, headers={"apikey": owner.api_key}) as http:
            made = await http.post(f"{a.url}/api/v2/teams", json={"name": "Probe Team 0"})
            team_id = made.json()["id"]
        before_redis = await _redis_counts(redis_url)
        before_api = await _api_requests([a.url, b_url])
        deadline = time.monotonic() + args.seconds + 3  # the traffic window starts after its set-up
        target = Target(a.url, a.pid)
        traffic = run_traffic(target, args, dict.fromkeys(KINDS, args.workers_per_kind),
                              dict.fromkeys(KINDS, args.clients_per_kind))  # fmt: skip
        readers = [
            _reader([a.url, b_url], owner.api_key, team_id, deadline, args.reader_pause)
            for _ in range(args.readers)
        ]
        probe = _staleness_probe(a.url, b_url, owner.api_key, team_id, deadline, args.probe_interval)
        results = await asyncio.gather(traffic, probe, *readers)
        delays, polls = results[1]
        after_redis = await _redis_counts(redis_url)
        after_api = await _api_requests([a.url, b_url])
    finally:
        b_process.terminate()
        await asyncio.to_thread(b_process.wait, 15)
        await local.stop(a)
        redis_process.terminate()
        redis_process.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)
    requests = after_api - before_api
    delta = {k: after_redis.get(k, 0.0) - before_redis.get(k, 0.0) for k in after_redis}
    commands = sum(v for k, v in delta.items() if k not in ("bytes_in", "bytes_out", "info"))
    cache_commands = sum(delta.get(k, 0.0) for k in CACHE_COMMANDS)
    return {
        "local_ttl": local_ttl, "api_requests": requests,
        "redis_commands_per_request": commands / requests,
        "cache_commands_per_request": cache_commands / requests,
        "publishes_per_request": delta.get("publish", 0.0) / requests,
        "redis_bytes_per_request": (delta["bytes_in"] + delta["bytes_out"]) / requests,
        "staleness_max_s": max(delays, default=float("nan")), "staleness_probes": len(delays),
        "probe_poll_max_s": max(polls, default=float("nan")),
        "redis_commands": {k: v for k, v in delta.items() if v and k not in ("bytes_in", "bytes_out")},
    }  # fmt: skip


def _print(row: dict[str, Any]) -> None:
    print(
        f"local tier {row['local_ttl']:.1f} s: {row['api_requests']:.0f} API requests, "
        f"{row['redis_commands_per_request']:.3f} Redis commands/request "
        f"(cache {row['cache_commands_per_request']:.3f}, publish {row['publishes_per_request']:.3f}), "
        f"{row['redis_bytes_per_request']:.0f} Redis bytes/request, "
        f"largest staleness {row['staleness_max_s'] * 1000:.0f} ms over {row['staleness_probes']} renames "
        f"(slowest poll {row['probe_poll_max_s'] * 1000:.0f} ms)"
    )
    print("  Redis commands:", ", ".join(f"{k} {v:.0f}" for k, v in sorted(row["redis_commands"].items())))


async def main(args: argparse.Namespace) -> None:
    on = await one_mode(args, 1.0)
    _print(on)
    off = await one_mode(args, 0.0)
    _print(off)

    def ratio(name: str) -> float:
        return float(off[name]) / max(float(on[name]), 1e-9)

    print(
        f"the local tier cuts Redis commands {ratio('redis_commands_per_request'):.1f}x "
        f"(cache commands {ratio('cache_commands_per_request'):.1f}x), "
        f"Redis bytes {ratio('redis_bytes_per_request'):.1f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    s4_arguments(parser)
    parser.set_defaults(seconds=10.0, clients_per_kind=3, workers_per_kind=3)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--reader-pause", type=float, default=1.0, help="seconds between a reader's rounds")
    parser.add_argument("--probe-interval", type=float, default=2.0, help="seconds between two renames")
    parser.add_argument("--procs", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
