"""PostgreSQL restarted under load: no 500, the pool reconnects, nothing is lost or half-written.

A private PostgreSQL cluster of this test (`initdb` + `pg_ctl` on a free port, never the machine's
shared server) serves a real `horde serve`; clients and a scripted worker keep calling while the
cluster restarts. Every answer must be a success, an expected refusal, or a 503 with an rc; after the
restart every request accepted before, during or after it completes, and the kudos ledger verifies.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from horde.server.db import open_database
from horde.server.kudos.service import verify
from tests import services
from tests.e2e.conftest import HordeServer, _free_port, _horde_command, _server_env, _stop, _wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TEXT_MODEL = "koboldcpp/restart-test"
GUARD = 60.0


def _bin_dir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
    return Path(out) if out and (Path(out) / "initdb").is_file() else None


class PrivatePostgres:
    """A throw-away cluster; as root its processes run as the `postgres` user (initdb refuses root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="horde-pg-"))
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, timeout=GUARD)

    def init(self) -> None:
        initdb = str(self.bin_dir / "initdb")
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "postgres.log")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", action)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart")  # pg_ctl's default mode is "fast": every open session is terminated

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = _bin_dir()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        services.unavailable("PostgreSQL's initdb/pg_ctl", RuntimeError("pg_config --bindir has no initdb"))
        raise AssertionError("unreachable")
    server = PrivatePostgres(bin_dir)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def served(private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[HordeServer]:
    port = _free_port()
    env = {**_server_env(tmp_path, port, private_postgres.url), "HORDE_DB_POOL_SIZE": "5"}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _horde_command(port), env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    server = HordeServer(f"http://127.0.0.1:{port}", "postgresql", log_path, process)
    _wait_ready(server)
    try:
        yield server
    finally:
        _stop(server)


@dataclass
class Load:
    """What the clients and the worker saw."""

    answers: Counter[tuple[str, int, str | None]] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)  # request ids answered 202
    bad: list[str] = field(default_factory=list)  # answers that are neither success, refusal nor a clean 503
    stop: threading.Event = field(default_factory=threading.Event)

    def record(self, what: str, response: httpx.Response) -> dict[str, object] | None:
        is_json = response.headers.get("content-type", "").startswith("application/json")
        body = response.json() if is_json else {}
        rc = body.get("rc") if isinstance(body, dict) else None
        self.answers[(what, response.status_code, rc)] += 1
        clean_503 = response.status_code == 503 and rc == "DatabaseUnavailable"
        if response.status_code >= 500 and not clean_503:
            self.bad.append(f"{what}: {response.status_code} {response.text[:200]}")
        return body if response.status_code < 300 and isinstance(body, dict) else None


def _clients(server: HordeServer, key: str, load: Load) -> None:
    with httpx.Client(base_url=server.api, headers={"apikey": key}, timeout=30) as client:
        while not load.stop.is_set():
            try:
                body = {"prompt": "restart", "models": [TEXT_MODEL], "params": {"max_length": 16}}
                created = load.record("async", client.post("/generate/text/async", json=body))
                if created and created.get("id"):
                    load.accepted.append(str(created["id"]))
                load.record("find_user", client.get("/find_user"))
                if load.accepted:
                    load.record("status", client.get(f"/generate/text/status/{load.accepted[-1]}"))
                load.record("performance", client.get("/status/performance"))
            except httpx.TransportError as exc:  # the server itself must stay up
                load.bad.append(f"transport: {exc!r}")
            time.sleep(0.05)


def _worker_round(client: httpx.Client, load: Load) -> int:
    pop = {"name": "restart worker", "models": [TEXT_MODEL], "max_length": 512, "max_context_length": 2048}
    popped = load.record("pop", client.post("/generate/text/pop", json=pop))
    if not popped or not popped.get("id"):
        return 0
    submit = {"id": popped["id"], "generation": "after the restart", "state": "ok"}
    response = client.post("/generate/text/submit", json=submit)
    load.record("submit", response)
    return 1


def _worker(server: HordeServer, key: str, load: Load) -> None:
    with httpx.Client(base_url=server.api, headers={"apikey": key}, timeout=30) as client:
        while not load.stop.is_set():
            try:
                if not _worker_round(client, load):
                    time.sleep(0.1)
            except httpx.TransportError as exc:
                load.bad.append(f"worker transport: {exc!r}")


def _done(client: httpx.Client, request_id: str) -> bool:
    response = client.get(f"/generate/text/status/{request_id}")
    return response.status_code == 200 and bool(response.json().get("done"))


def test_postgres_restart_under_load(served: HordeServer, private_postgres: PrivatePostgres) -> None:
    key = served.api_key("restart_user")
    worker_key = served.api_key("restart_worker_owner")
    load = Load()
    threads = [
        threading.Thread(target=_clients, args=(served, key, load), daemon=True),
        threading.Thread(target=_clients, args=(served, key, load), daemon=True),
        threading.Thread(target=_worker, args=(served, worker_key, load), daemon=True),
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)
    before = len(load.accepted)
    private_postgres.restart()
    time.sleep(4)
    load.stop.set()
    for thread in threads:
        thread.join(GUARD)

    assert load.bad == [], f"neither success, refusal nor a clean 503: {load.bad[:10]}\n{load.answers}"
    assert before > 0, f"nothing accepted before the restart: {load.answers}"
    assert len(load.accepted) > before, f"nothing accepted after the restart: {load.answers}"

    # Everything accepted completes once the worker serves it: nothing was lost in the restart.
    with httpx.Client(base_url=served.api, headers={"apikey": worker_key}, timeout=30) as client:
        deadline = time.monotonic() + GUARD
        pending = set(load.accepted)
        while pending and time.monotonic() < deadline:
            _worker_round(client, load)
            pending = {rid for rid in pending if not _done(client, rid)}
        assert not pending, f"{len(pending)} of {len(load.accepted)} requests never completed"
        assert load.bad == [], load.bad[:10]

    assert asyncio.run(asyncio.wait_for(_ledger_problems(private_postgres.url), GUARD)) == []


async def _ledger_problems(url: str) -> list[str]:
    """What `horde kudos verify` checks, on the restarted database."""
    db = open_database(url, pool_size=1)
    try:
        async with db.autocommit() as conn:
            return await verify(conn)
    finally:
        await db.dispose()
