"""Two real `horde serve` processes given ONLY the database, Redis and S3 settings (no pepper, their own
data dirs): a key minted on one works on the other, an image uploaded through one node's presigned URL
is read through the other, a node with a store of its own is refused, and `--workers 2` runs two.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests import services
from tests.e2e.conftest import HordeServer, _free_port, _horde_command, _stop, _wait_ready
from tests.s3 import S3Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


@dataclass
class Cluster:
    env: dict[str, str]  # what every node is given (no HORDE_DATA_DIR: each node has its own)
    database: services.PostgresDatabase
    a: HordeServer
    b: HordeServer


def _only_shared_settings(database_url: str, redis_url: str, s3: S3Server, bucket: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_")}
    settings = {"database_url": database_url, "redis_url": redis_url, **s3.settings(bucket)}
    env.update({f"HORDE_{name.upper()}": value for name, value in settings.items()})
    # not a shared setting: small pools, so these nodes' processes fit beside the rest of the suite in
    # the machine's PostgreSQL (max_connections 100 shared by every test)
    env["HORDE_DB_POOL_SIZE"] = "6"  # the scheduler holds two per running task (its lock and its work)
    return env


def _start(env: dict[str, str], data_dir: Path, *extra: str) -> HordeServer:
    port = _free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*_horde_command(port), *extra], env={**env, "HORDE_DATA_DIR": str(data_dir)},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    return HordeServer(f"http://127.0.0.1:{port}", "postgresql", log_path, process)


@pytest.fixture(scope="module")
def cluster(
    s3_server: S3Server, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    try:
        database = asyncio.run(services.create_postgres_database())
    except Exception as exc:
        services.unavailable("PostgreSQL", exc)
    env = _only_shared_settings(database.url, redis_url, s3_server, s3_server.new_bucket())
    root = tmp_path_factory.mktemp("nodes")
    a, b = _start(env, root / "a"), _start(env, root / "b")
    try:
        _wait_ready(a)
        _wait_ready(b)
        yield Cluster(env, database, a, b)
    finally:
        _stop(a)
        _stop(b)
        asyncio.run(services.drop_postgres_database(database))


_SOURCES = iter(range(2, 250))


def _register(node: HordeServer, username: str) -> str:
    # registration is one account per client IP and hour (ADR 0010): each from a loopback address of its own
    source = f"127.0.9.{next(_SOURCES)}"
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as http:
        page = http.post(f"{node.base_url}/register", data={"username": username})
    assert page.status_code == 201, page.text
    match = re.search(r"<code>([^<]+)</code>", page.text)
    assert match, page.text
    return match.group(1)


def _webp(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(out, format="WEBP")
    return out.getvalue()


def _scrape(node: HordeServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{node.base_url}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _pops(node: HordeServer, outcome: str) -> float:
    labels = frozenset({"kind": "image", "outcome": outcome}.items())
    return _scrape(node).get(("horde_pops_total", labels), 0.0)


def test_a_key_minted_on_one_node_works_on_the_other(cluster: Cluster) -> None:
    key = _register(cluster.a, "minted_on_a")
    for node in (cluster.a, cluster.b):
        found = httpx.get(f"{node.api}/find_user", headers={"apikey": key}, timeout=30)
        assert found.status_code == 200, found.text
        assert found.json()["username"].startswith("minted_on_a#")
    assert httpx.get(f"{cluster.b.api}/find_user", headers={"apikey": key[::-1]}).status_code == 404


def test_an_image_uploaded_through_one_node_is_read_through_the_other(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    key = _register(a, "image_user")
    headers = {"apikey": key}
    body = {"prompt": "a lighthouse", "params": {"n": 1, "steps": 5}, "models": ["stable_diffusion"]}
    queued = httpx.post(f"{b.api}/generate/async", json=body, headers=headers, timeout=30)
    assert queued.status_code == 202, queued.text
    jobs_before = _pops(a, "job")
    pop = {"name": "node worker", "models": ["stable_diffusion"], "bridge_agent": REGEN, "max_pixels": 512**2}
    job = httpx.post(f"{a.api}/generate/pop", json=pop, headers=headers, timeout=30).json()
    assert job["id"], job
    assert job["r2_upload"].startswith(cluster.env["HORDE_S3_ENDPOINT"])  # the bucket, not node A
    result = _webp((200, 120, 0))
    assert httpx.put(job["r2_upload"], content=result, timeout=30).status_code == 200
    submit = {"id": job["id"], "generation": "R2", "seed": 7, "state": "ok"}
    assert httpx.post(f"{b.api}/generate/submit", json=submit, headers=headers, timeout=30).status_code == 200
    statuses = [
        httpx.get(f"{n.api}/generate/status/{queued.json()['id']}", timeout=30).json() for n in (a, b)
    ]
    for status in statuses:
        assert status["done"] is True
        assert httpx.get(status["generations"][0]["img"], timeout=30).content == result
    assert _pops(a, "job") == jobs_before + 1  # node A's /metrics saw its pop
    assert ("horde_event_loop_lag_seconds", frozenset()) in _scrape(b)  # the probe runs in a real node


def test_a_cached_answer_reflects_a_change_made_on_the_other_node(cluster: Cluster) -> None:
    """ADR 0026: node B caches the worker (locally and in Redis, 2 s); a change on node A invalidates
    it on every node, so B shows it long before any TTL could have run out."""
    a, b = cluster.a, cluster.b
    key = _register(a, "cache_user")
    pop = {"name": "cached node worker", "models": ["stable_diffusion"], "bridge_agent": REGEN}
    assert (
        httpx.post(f"{a.api}/generate/pop", json=pop, headers={"apikey": key}, timeout=30).status_code == 200
    )
    worker = httpx.get(f"{b.api}/workers/name/cached node worker", timeout=30).json()
    assert httpx.get(f"{b.api}/workers/name/cached node worker", timeout=30).json() == worker
    changed = httpx.put(
        f"{a.api}/workers/{worker['id']}", json={"info": "changed on A"}, headers={"apikey": key}, timeout=30
    )
    assert changed.status_code == 200, changed.text
    written = time.monotonic()
    while (
        httpx.get(f"{b.api}/workers/name/cached node worker", timeout=30).json().get("info") != "changed on A"
    ):
        assert time.monotonic() - written < 2.5, "node B still serves its cached worker (TTLs: 3 s)"
        time.sleep(0.02)
    hits = {labels: v for (name, labels), v in _scrape(b).items() if name == "horde_cache_hits_total"}
    assert sum(hits.values()) >= 1, hits


def test_a_node_with_a_store_of_its_own_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    env = {k: v for k, v in cluster.env.items() if not k.startswith("HORDE_S3_")}  # local files
    node = _start(env, tmp_path / "lonely")
    try:
        assert node.process.wait(90) != 0
    finally:
        _stop(node)
    assert "running nodes use another store" in node.log_tail()


def test_serve_with_two_worker_processes(cluster: Cluster, tmp_path: Path) -> None:
    node = _start(cluster.env, tmp_path / "multi", "--workers", "2")
    try:
        _wait_both_ready(node)
        key = _register(node, "multi_user")
        for _ in range(4):
            assert httpx.get(f"{node.api}/find_user", headers={"apikey": key}, timeout=30).status_code == 200
        pids = asyncio.run(_node_pids(cluster.database))
        assert len(pids) == 4  # A, B and the two processes of this node
    finally:
        _stop(node)
    assert "Traceback" not in node.log_tail()


def _wait_both_ready(node: HordeServer, timeout: float = 240.0) -> None:
    """Both processes registered (each imports the whole server after the parent: slow when busy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and node.process.poll() is None:
        if node.log_tail().count("Application startup complete") >= 2:
            _wait_ready(node)
            return
        time.sleep(0.5)
    raise AssertionError(f"horde serve --workers 2 did not start; its log:\n{node.log_tail()}")


async def _node_pids(database: services.PostgresDatabase) -> list[int]:
    conn = await asyncpg.connect(database.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return [row["pid"] for row in await conn.fetch("SELECT pid FROM server_nodes")]
    finally:
        await conn.close()
