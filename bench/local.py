"""`python -m bench local`: a throwaway `horde serve` on a fresh PostgreSQL database, torn down after."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def horde_command() -> list[str]:
    script = Path(sys.executable).parent / "horde"
    if script.exists():
        return [str(script)]  # a python script: exec keeps the pid, so /proc/<pid> is the server's
    found = shutil.which("horde")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from horde.cli import main; sys.exit(main())"]


@dataclass
class LocalServer:
    """One API process on 127.0.0.1:<ephemeral port>, with its own database and data directory."""

    url: str
    pid: int
    db_name: str
    db_url: str  # asyncpg DSN of the bench database
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path


async def create_database(name: str) -> str:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


async def start(env_extra: dict[str, str] | None = None, timeout: float = 60.0) -> LocalServer:
    """Create a database, start `horde serve` on it and wait for its heartbeat."""
    name = f"horde_bench_{uuid.uuid4().hex[:8]}"
    db_url = await create_database(name)
    data_dir = Path(tempfile.mkdtemp(prefix="horde-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "HORDE_DATABASE_URL": db_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        "HORDE_DATA_DIR": str(data_dir),
        "HORDE_TEST_APIKEYS": "1",
        "HORDE_TEST_RATELIMIT_DISABLED": "1",  # the bench is thousands of requests from a few keys and IPs
        **(env_extra or {}),
    }
    log_path = data_dir / "server.log"
    process = _spawn([*horde_command(), "serve", "--host", "127.0.0.1", "--port", str(port)], env, log_path)
    server = LocalServer(f"http://127.0.0.1:{port}", process.pid, name, db_url, process, data_dir, log_path)
    try:
        await _wait_ready(server, timeout)
    except BaseException:
        await stop(server)
        raise
    return server


async def _wait_ready(server: LocalServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=server.url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"horde serve exited: {server.log_path.read_text()[-2000:]}")
            try:
                if (await client.get("/api/v2/status/heartbeat")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"horde serve did not answer within {timeout:.0f} s (log: {server.log_path})")


def error_summary(server: LocalServer, limit: int = 10) -> str:
    """The last distinct error lines of the server's log (it is deleted on teardown)."""
    try:
        lines = server.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if "Error" in line and not line.startswith(" ")]
    distinct = list(dict.fromkeys(errors))[-limit:]
    return "server log errors:\n" + "\n".join(f"  {line[:300]}" for line in distinct) if distinct else ""


async def stop(server: LocalServer, *, keep: bool = False) -> None:
    """Stop the server (SIGTERM, then SIGKILL), drop its database and data directory."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(server.process.wait, 15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            await asyncio.to_thread(server.process.wait, 5)
    if keep:
        print(f"kept database {server.db_name} and {server.data_dir}")
        return
    await drop_database(server.db_name)
    shutil.rmtree(server.data_dir, ignore_errors=True)
