"""The real `horde serve` process, for end-to-end tests over real HTTP.

`horde_server` starts one server per database for the whole session: SQLite in a temporary data dir,
and a fresh PostgreSQL database (created with asyncpg, dropped afterwards). A test that wants one of
them only says so with `@pytest.mark.parametrize("horde_server", ["sqlite"], indirect=True)`.

Durations are short (leases of a few seconds, a sweep every second, ADR 0004) so the lease and expiry
paths run during a test. When a test that used the server fails, the tail of the server's log is added
to its report.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import services
from tests.conftest import MODEL_REFERENCE

START_TIMEOUT = 90.0  # a cold start imports the whole server; slow on a busy 2-core machine
STOP_TIMEOUT = 15.0
LOG_TAIL = 150  # lines of the server log attached to a failing test's report


@dataclass
class HordeServer:
    """A running `horde serve` process and how to reach it."""

    base_url: str  # http://127.0.0.1:PORT (no trailing slash)
    database: str  # "sqlite" or "postgresql"
    log_path: Path
    process: subprocess.Popen[bytes]
    users: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v2"

    def api_key(self, username: str = "e2e_user", **fields: Any) -> str:
        """The key of a test user (a trusted moderator with 10,000 kudos unless `fields` say otherwise)."""
        if username not in self.users:
            body = {"username": username, "oauth_id": f"e2e_{username}", **fields}
            response = httpx.post(f"{self.api}/dev/test-user", json=body, timeout=30)
            assert response.status_code in (200, 201), response.text
            self.users[username] = response.json()["api_key"]
        return self.users[username]

    def log_tail(self, lines: int = LOG_TAIL) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_env(data_dir: Path, port: int, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_")}
    env.update(
        HORDE_DATA_DIR=str(data_dir),
        HORDE_DATABASE_URL=database_url,
        HORDE_PUBLIC_URL=f"http://127.0.0.1:{port}",
        HORDE_TEST_APIKEYS="1",
        HORDE_TEST_RATELIMIT_DISABLED="1",
        HORDE_ALLOW_PRIVATE_SOURCE_URLS="1",
        HORDE_API_KEY_PEPPER="e2e-pepper",
        HORDE_DB_POOL_SIZE="5",
        # Short durations: leases of seconds, a sweep every second (ADR 0004).
        HORDE_JOB_TTL_SCALE="0.2",  # text 30 s, image 30 s and up, alchemy 36 s
        HORDE_SWEEP_INTERVAL="1",
        HORDE_REQUEST_EXPIRY="120",
        HORDE_WEBHOOK_TRIES="1",
        HORDE_WEBHOOK_RETRY_DELAY="0.2",
        HORDE_WEBHOOK_TIMEOUT="2",
    )
    if (MODEL_REFERENCE / "stable_diffusion.json").is_file():
        env["HORDE_MODEL_REFERENCE_IMAGE"] = str(MODEL_REFERENCE / "stable_diffusion.json")
        env["HORDE_MODEL_REFERENCE_TEXT"] = str(MODEL_REFERENCE / "text_db.json")
    return env


def _horde_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("horde")
    entry = (
        [str(script)] if script.is_file() else [sys.executable, "-c", "from horde.cli import main; main()"]
    )
    return [*entry, "serve", "--host", "127.0.0.1", "--port", str(port)]


def _wait_ready(server: HordeServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if httpx.get(f"{server.api}/status/heartbeat", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    code = server.process.poll()
    _stop(server)
    state = f"exited with {code}" if code is not None else f"not ready after {START_TIMEOUT:.0f} s"
    raise RuntimeError(f"horde serve ({server.database}) {state}; its log:\n{server.log_tail()}")


def _stop(server: HordeServer) -> None:
    if server.process.poll() is not None:
        return
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(5)


def _launch(database: str, database_url: str, data_dir: Path) -> HordeServer:
    port = _free_port()
    log_path = data_dir / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _horde_command(port),
            env=_server_env(data_dir, port, database_url),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it stops its children too
        )
    return HordeServer(f"http://127.0.0.1:{port}", database, log_path, process)


class ServerPool:
    """The session's servers, one per database, started together and stopped at the end.

    Starting is slow (imports) and mostly waiting, so every variant the selected tests use starts at
    once, and a test waits only for its own.
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.servers: dict[str, HordeServer] = {}
        self.ready: set[str] = set()
        self.urls: dict[str, str] = {}
        self.unavailable: dict[str, BaseException] = {}
        self.postgres: services.PostgresDatabase | None = None

    def launch(self, database: str) -> None:
        if database in self.servers or database in self.unavailable:
            return
        data_dir = self.tmp_path_factory.mktemp(f"horde-{database}")
        if database == "postgresql":
            try:
                self.postgres = asyncio.run(services.create_postgres_database())
            except Exception as exc:  # any connection failure means unavailable
                self.unavailable[database] = exc
                return
            self.urls[database] = self.postgres.url
        else:
            self.urls[database] = f"sqlite+aiosqlite:///{data_dir / 'horde.sqlite3'}"
        self.servers[database] = _launch(database, self.urls[database], data_dir)

    def get(self, database: str) -> HordeServer:
        """The running server for `database` (skipped, or failed under CI=true, when it cannot run)."""
        self.launch(database)
        if database in self.unavailable:
            services.unavailable("PostgreSQL", self.unavailable[database])
        server = self.servers[database]
        for _attempt in range(3):  # the port can be taken between choosing it and binding it
            if database in self.ready:
                return server
            try:
                _wait_ready(server)
            except RuntimeError:
                if "address already in use" not in server.log_tail().lower():
                    raise
                server = _launch(database, self.urls[database], server.log_path.parent)
                self.servers[database] = server
                continue
            self.ready.add(database)
        if database not in self.ready:
            raise RuntimeError(f"horde serve ({database}) could not bind a free port three times in a row")
        return server

    def close(self) -> None:
        for server in self.servers.values():
            _stop(server)
        if self.postgres is not None:
            asyncio.run(services.drop_postgres_database(self.postgres))


@pytest.fixture(scope="session")
def horde_pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPool]:
    """Every server variant the selected tests use, started at once."""
    pool = ServerPool(tmp_path_factory)
    wanted = {
        item.callspec.params["horde_server"]
        for item in request.session.items
        if hasattr(item, "callspec") and "horde_server" in item.callspec.params
    }
    try:
        for database in sorted(wanted):
            pool.launch(database)
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def horde_server(request: pytest.FixtureRequest, horde_pool: ServerPool) -> HordeServer:
    """A real `horde serve` on 127.0.0.1:<ephemeral>, once on SQLite and once on a fresh PostgreSQL."""
    return horde_pool.get(request.param)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    server = getattr(item, "funcargs", {}).get("horde_server")
    if report.failed and isinstance(server, HordeServer):
        report.sections.append(
            (f"horde serve log ({server.database}, last {LOG_TAIL} lines)", server.log_tail())
        )
    return report
