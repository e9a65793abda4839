"""Chaos under load (issue 14): a killed API node, a killed scheduler, Redis stopped and started.

Every process here is private to the test: a PostgreSQL database of its own (on the machine's server,
which is never stopped), a `redis-server` on a free port of its own, `horde serve` and `horde
scheduler` processes stopped by their pids. Each test keeps its load to a few seconds. They run in CI
in one xdist group of their own (`chaos`), so they never run beside each other.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from horde.server.db import open_database
from horde.server.kudos.service import verify
from tests import needs, services
from tests.e2e.conftest import HordeServer, _free_port, _horde_command, _server_env, _stop, _wait_ready
from tests.server.test_redis_down import PrivateRedis

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("chaos")]

TEXT_MODEL = "koboldcpp/chaos-test"
GUARD = 45.0


def _env(data_dir: Path, port: int, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = _server_env(data_dir, port, database_url)
    env.update(
        HORDE_REDIS_URL=redis_url,
        HORDE_REDIS_PREFIX=f"chaos-{uuid.uuid4().hex[:8]}:",
        HORDE_DB_POOL_SIZE="5",
        HORDE_JOB_TTL_SCALE="0.05",  # a text lease of 7.5 s: a job whose pop answer died with its node
        HORDE_SWEEP_INTERVAL="0.5",  # comes back to the queue within the test
        HORDE_KUDOS_FOLD_INTERVAL="0.3",
        **extra,
    )
    return env


def _serve(env: dict[str, str], log_path: Path, port: int, command: list[str] | None = None) -> HordeServer:
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command or _horde_command(port), env={**env, "HORDE_PUBLIC_URL": f"http://127.0.0.1:{port}"},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    return HordeServer(f"http://127.0.0.1:{port}", "postgresql", log_path, process)


def _scheduler(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    entry = _horde_command(0)[:-5]  # the `horde` entry point without `serve --host .. --port ..`
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*entry, "scheduler"], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@dataclass
class Shared:
    database: services.PostgresDatabase
    redis: PrivateRedis
    root: Path


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Shared]:
    needs.program("redis-server", install="apt-get install redis-server")
    try:
        database = asyncio.run(services.create_postgres_database())
    except Exception as exc:
        services.unavailable("PostgreSQL", exc)
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield Shared(database, redis, tmp_path)
    finally:
        redis.stop()
        asyncio.run(services.drop_postgres_database(database))


@dataclass
class Load:
    """What the clients and the worker saw, across the nodes they spread over."""

    nodes: list[str]  # API base URLs still believed alive, in order of preference
    answers: Counter[tuple[str, int, str | None]] = field(default_factory=Counter)
    accepted: set[str] = field(default_factory=set)
    bad: list[str] = field(default_factory=list)
    submitted: Counter[str] = field(default_factory=Counter)  # job id -> successful submits
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, what: str, response: httpx.Response) -> dict[str, object] | None:
        is_json = response.headers.get("content-type", "").startswith("application/json")
        body = response.json() if is_json else {}
        rc = body.get("rc") if isinstance(body, dict) else None
        with self.lock:
            self.answers[(what, response.status_code, rc)] += 1
            if response.status_code >= 500 and not (response.status_code == 503 and rc):
                self.bad.append(f"{what}: {response.status_code} {response.text[:200]}")
        return body if response.status_code < 300 and isinstance(body, dict) else None

    def call(self, what: str, method: str, path: str, key: str, json: object = None) -> httpx.Response | None:
        """Send to the first live node; on a transport error or a 503, retry on the next one (as a
        client behind a load balancer would); None when no node answered."""
        for attempt in range(2 * len(self.nodes) + 2):
            node = self.nodes[attempt % len(self.nodes)]
            try:
                response = httpx.request(method, node + path, headers={"apikey": key}, json=json, timeout=15)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            self.record(what, response)
            if response.status_code != 503:
                return response
            time.sleep(0.1)
        return None


def _client(load: Load, key: str) -> None:
    while not load.stop.is_set():
        body = {"prompt": "chaos", "models": [TEXT_MODEL], "params": {"max_length": 16}}
        response = _create(load, key, body)
        if response is not None and response.status_code == 202:
            with load.lock:
                load.accepted.add(str(response.json()["id"]))
        load.call("find_user", "GET", "/api/v2/find_user", key)
        load.call("performance", "GET", "/api/v2/status/performance", key)
        time.sleep(0.05)


def _create(load: Load, key: str, body: dict[str, object]) -> httpx.Response | None:
    # one Idempotency-Key for every try of one creation: a retry that reaches the other node after the
    # first try was queued gets the same request back, never a second one
    headers = {"apikey": key, "Idempotency-Key": uuid.uuid4().hex}
    for attempt in range(2 * len(load.nodes) + 2):
        node = load.nodes[attempt % len(load.nodes)]
        try:
            response = httpx.post(
                f"{node}/api/v2/generate/text/async", json=body, headers=headers, timeout=15
            )
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        load.record("async", response)
        if response.status_code != 503:
            return response
        time.sleep(0.1)
    return None


def _worker_round(load: Load, key: str) -> int:
    pop = {"name": "chaos worker", "models": [TEXT_MODEL], "max_length": 512, "max_context_length": 2048}
    popped = load.call("pop", "POST", "/api/v2/generate/text/pop", key, json=pop)
    body = popped.json() if popped is not None and popped.status_code == 200 else {}
    job_id = body.get("id")
    if not job_id:
        return 0
    submit = {"id": job_id, "generation": "survived", "state": "ok"}
    done = load.call("submit", "POST", "/api/v2/generate/text/submit", key, json=submit)
    if done is not None and done.status_code == 200:
        with load.lock:
            load.submitted[str(job_id)] += 1
    return 1


def _worker(load: Load, key: str) -> None:
    while not load.stop.is_set():
        if not _worker_round(load, key):
            time.sleep(0.05)


def _run_load(load: Load, client_key: str, worker_key: str, during: object) -> None:
    threads = [threading.Thread(target=_client, args=(load, client_key), daemon=True) for _ in range(2)]
    threads.append(threading.Thread(target=_worker, args=(load, worker_key), daemon=True))
    for thread in threads:
        thread.start()
    try:
        during()  # type: ignore[operator]
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(GUARD)


def _drain(load: Load, worker_key: str) -> None:
    """Serve until every accepted request is done: none was lost."""
    deadline = time.monotonic() + GUARD
    pending = set(load.accepted)
    while pending and time.monotonic() < deadline:
        _worker_round(load, worker_key)
        still = set()
        for request_id in pending:
            status = load.call("status", "GET", f"/api/v2/generate/text/status/{request_id}", worker_key)
            if status is None or status.status_code != 200 or not status.json().get("done"):
                still.add(request_id)
        pending = still
        if pending:
            time.sleep(0.2)
    assert not pending, f"{len(pending)} of {len(load.accepted)} accepted requests never completed"


def _kudos_verify(env: dict[str, str]) -> None:
    """What `horde kudos verify` checks (in this process: the CLI's start-up alone takes many seconds
    on a loaded machine)."""
    assert asyncio.run(asyncio.wait_for(_ledger_problems(env["HORDE_DATABASE_URL"]), GUARD)) == []


async def _ledger_problems(url: str) -> list[str]:
    db = open_database(url, pool_size=1)
    try:
        async with db.autocommit() as conn:
            return await verify(conn)
    finally:
        await db.dispose()


async def _count_requests(url: str) -> int:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM requests"))
    finally:
        await conn.close()


def test_sigkill_of_one_api_node_loses_nothing(shared: Shared) -> None:
    ports = [_free_port(), _free_port()]
    env = _env(shared.root / "data", ports[0], shared.database.url, shared.redis.url)
    (shared.root / "data").mkdir()
    a = _serve(env, shared.root / "a.log", ports[0])
    b = _serve(env, shared.root / "b.log", ports[1])
    try:
        _wait_ready(a)
        _wait_ready(b)
        client_key, worker_key = a.api_key("chaos_client"), a.api_key("chaos_worker")
        load = Load([a.base_url, b.base_url])

        def kill_a() -> None:
            time.sleep(2.5)
            assert load.accepted, load.answers
            _kill(a.process)  # SIGKILL: no shutdown, whatever was in flight on A dies with it
            time.sleep(3)

        _run_load(load, client_key, worker_key, kill_a)
        before_drain = len(load.accepted)
        assert before_drain > 0
        _drain(load, worker_key)
        assert load.bad == [], f"neither success, refusal nor a 503 with an rc: {load.bad[:10]}"
        # no retry queued a request twice: the database holds exactly the requests the clients saw
        assert asyncio.run(_count_requests(shared.database.url)) == len(load.accepted)
        assert all(count == 1 for count in load.submitted.values()), load.submitted.most_common(3)
        _kudos_verify(env)
    finally:
        _kill(a.process)
        _stop(b)


def test_scheduler_killed_mid_task_and_restarted(shared: Shared) -> None:
    port = _free_port()
    (shared.root / "data").mkdir()
    env = _env(shared.root / "data", port, shared.database.url, shared.redis.url, HORDE_RUN_SCHEDULER="0")
    node = _serve(env, shared.root / "serve.log", port)
    scheduler = _scheduler(env, shared.root / "scheduler.log")
    kills = 0
    try:
        _wait_ready(node)
        client_key, worker_key = node.api_key("chaos_client"), node.api_key("chaos_worker")
        load = Load([node.base_url])

        def kill_mid_task() -> None:
            nonlocal scheduler, kills
            deadline = time.monotonic() + 20
            while kills < 3 and time.monotonic() < deadline:
                if asyncio.run(_task_running(shared.database.url)):
                    _kill(scheduler)  # while it holds a task's advisory lock: in the middle of a run
                    kills += 1
                    time.sleep(0.5)
                    scheduler = _scheduler(env, shared.root / "scheduler.log")
                    time.sleep(1.0)
                time.sleep(0.01)

        _run_load(load, client_key, worker_key, kill_mid_task)
        assert kills == 3, f"the scheduler was seen in a task {kills} times: {shared.root / 'scheduler.log'}"
        _drain(load, worker_key)
        assert load.bad == [], load.bad[:10]
        time.sleep(2)  # the restarted scheduler folds what is left
        _kudos_verify(env)  # a fold done twice or half would leave balances unequal to their postings
        assert scheduler.poll() is None, (shared.root / "scheduler.log").read_text()[-2000:]
    finally:
        _kill(scheduler)
        _stop(node)


async def _task_running(url: str) -> bool:
    """Whether a scheduled task holds its advisory lock now (the API node runs none)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        query = (
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
        )
        return bool(await conn.fetchval(query))
    finally:
        await conn.close()


def test_redis_stopped_and_started_under_load(shared: Shared) -> None:
    ports = [_free_port(), _free_port()]
    (shared.root / "data").mkdir()
    env = _env(shared.root / "data", ports[0], shared.database.url, shared.redis.url)
    a = _serve(env, shared.root / "a.log", ports[0])
    b = _serve(env, shared.root / "b.log", ports[1])
    try:
        _wait_ready(a)
        _wait_ready(b)
        client_key, worker_key = a.api_key("chaos_client"), a.api_key("chaos_worker")
        load = Load([a.base_url, b.base_url])
        seen_degraded: list[bool] = []

        def redis_down_and_up() -> None:
            time.sleep(2)
            shared.redis.stop()
            time.sleep(1.5)
            beat = httpx.get(f"{b.api}/status/heartbeat", timeout=10).json()
            seen_degraded.append(beat.get("redis_connection") is False)
            time.sleep(1.5)
            shared.redis.start()
            time.sleep(2)

        _run_load(load, client_key, worker_key, redis_down_and_up)
        assert load.bad == [], f"neither success, refusal nor a 503 with an rc: {load.bad[:10]}"
        assert seen_degraded == [True]
        assert {status for (_, status, _) in load.answers} <= {200, 202, 503}, load.answers
        deadline = time.monotonic() + GUARD
        for node in (a, b):  # full recovery: both nodes use Redis again
            while httpx.get(f"{node.api}/status/heartbeat", timeout=10).json()["message"] != "OK":
                assert time.monotonic() < deadline, node.log_tail()
                time.sleep(0.2)
        _drain(load, worker_key)
        _kudos_verify(env)
    finally:
        _stop(a)
        _stop(b)
