"""`horde up`: a whole horde on this machine from one command (docs/decisions/0007-horde-up.md).

The server runs in this process (SQLite in `HORDE_DATA_DIR`, private source URLs allowed, the scheduler
inside); a local user is made on the first run and its key kept in the data dir; a worker serving the
bundled Gemma model and the alchemy forms that load runs as a child `horde worker`. SIGINT or SIGTERM
stops the worker first (its held jobs are submitted or reported faulted), then the server; a second
signal hurries both. Exit codes: 0 after a clean stop, 1 when the server or the worker could not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from fastapi import FastAPI

    from horde.server.config import Settings

__all__ = ["up"]

log = logging.getLogger("horde.up")

KEY_FILE = "up_api_key"
WORKER_CONFIG = "up_worker.yaml"
WORKER_SHUTDOWN = 15.0  # seconds the worker may spend finishing held jobs before it reports them faulted
WORKER_KILL_AFTER = WORKER_SHUTDOWN + 15.0
READY_MARK = "serving text as "

# The worker child's entry: it asks Linux for SIGTERM when `horde up` dies (even by SIGKILL), so it is
# never left popping against a dead horde, then runs `horde worker`.
WORKER_BOOT = """\
import os, signal, sys
parent = int(sys.argv.pop(1))
if sys.platform == "linux":
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != parent:
    sys.exit(0)
from horde.cli import main
main(sys.argv[1:], prog_name="horde")
"""


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=7001,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--no-worker", is_flag=True, help="Run the server and the user only.")
def up(port: int, host: str, no_worker: bool) -> None:
    """Run a local horde: server, your user and key, and a worker with the bundled models.

    Data (database, key, model files) lives in HORDE_DATA_DIR (default ~/.local/share/horde).
    Ctrl-C stops everything.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.exit(_run(_Up(host=host, port=port, with_worker=not no_worker)))


def _run(runner: _Up) -> int:
    try:
        import uvloop
    except ImportError:  # uvloop comes with uvicorn[standard]; plain asyncio works too
        return asyncio.run(runner.run())
    return asyncio.run(runner.run(), loop_factory=uvloop.new_event_loop)


@dataclass
class _Up:
    host: str
    port: int
    with_worker: bool = True
    started: float = field(default_factory=time.monotonic)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    signals: int = 0
    worker: asyncio.subprocess.Process | None = None
    server: Any = None  # the uvicorn.Server

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        try:
            return await self._run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _on_signal(self) -> None:
        self.signals += 1
        if self.signals == 1:
            log.info("stopping: the worker first, then the server (again to hurry)")
        else:
            log.warning("hurrying: the worker abandons its jobs, the server its connections")
            self._signal_worker(signal.SIGINT)
            if self.server is not None:
                self.server.force_exit = True
        self.stop.set()

    async def _run(self) -> int:
        from horde.server.app import create_app

        sock = _bind(self.host, self.port)
        settings = _settings(self.host, sock.getsockname()[1])
        app = create_app(settings)
        serving = asyncio.create_task(self._serve(app, settings, sock))
        code = 0
        try:
            if not await self._first(lambda: bool(self.server and self.server.started), serving):
                return 0 if self.stop.is_set() else 1
            key = await _local_key(app, settings)
            if self.stop.is_set():
                return 0
            _announce(settings.effective_public_url, key, time.monotonic() - self.started)
            if self.with_worker:
                code = await self._with_worker(settings, key)
            else:
                await self.stop.wait()
        finally:
            if self.server is not None:
                self.server.should_exit = True
            await serving
        return code

    async def _serve(self, app: FastAPI, settings: Settings, sock: socket.socket) -> None:
        config = _uvicorn_config(app, settings)
        self.server = _server(config)
        try:
            await self.server.serve(sockets=[sock])
        except SystemExit:  # uvicorn's answer to a failed start-up (already logged)
            log.error("the server could not start")
        finally:
            sock.close()

    async def _first(self, ready: Callable[[], bool], serving: asyncio.Task[None]) -> bool:
        """Wait until ``ready()``; False when stopped or when the server ended first."""
        while not ready():
            if self.stop.is_set() or serving.done():
                return False
            await asyncio.sleep(0.05)
        return True

    # The worker child ----------------------------------------------------------------------------------
    async def _with_worker(self, settings: Settings, key: str) -> int:
        config = _write_worker_config(settings)
        self.worker = await _spawn_worker(config, settings.effective_public_url, key)
        relay = asyncio.create_task(_relay(self.worker, started=self.started))
        exited = asyncio.create_task(self.worker.wait())
        stopping = asyncio.create_task(self.stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if exited.done():
            log.error("the worker exited (code %s); stopping the server", self.worker.returncode)
            code = 1
        else:
            self._signal_worker(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), WORKER_KILL_AFTER)
            except TimeoutError:
                log.warning("the worker did not stop in %gs; killing it", WORKER_KILL_AFTER)
                self._signal_worker(signal.SIGKILL)
                await exited
            log.info("worker stopped (code %s)", self.worker.returncode)
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        return code

    def _signal_worker(self, sig: signal.Signals) -> None:
        if self.worker is not None and self.worker.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.worker.send_signal(sig)


def _server(config: Any) -> Any:
    from horde.server.processes import ClosingServer

    class Server(ClosingServer):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None]:
            # `horde up` owns SIGINT/SIGTERM: the worker must stop before the server does.
            yield

    return Server(config)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _settings(host: str, port: int) -> Settings:
    from horde.server.config import Settings

    # Embedded mode whatever the environment says: SQLite in the data dir, private sources, scheduler.
    return Settings(host=host, port=port, database_url="", allow_private_source_urls=True, run_scheduler=True)


def _uvicorn_config(app: FastAPI, settings: Settings) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="info",
        http="httptools",
        timeout_graceful_shutdown=3,
    )


async def _local_key(app: FastAPI, settings: Settings) -> str:
    """The local user's key: the one kept in the data dir while the horde still knows it, else a new user."""
    from horde.client import HordeClient, InvalidAPIKey, NotFound

    path = settings.data_dir / KEY_FILE
    key = path.read_text().strip() if path.is_file() else ""
    if key:
        async with HordeClient(settings.effective_public_url, key) as client:
            try:
                await client.find_user()
            except (InvalidAPIKey, NotFound):
                log.warning("the key in %s is unknown to this database; making a new local user", path)
            else:
                return key
    key = await _create_user(app)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


async def _create_user(app: FastAPI) -> str:
    import uuid

    from horde.server.users import service

    horde = app.state.horde
    async with horde.db.transaction() as conn:
        new = await service.create_user(
            conn, username="local", oauth_id=f"local:{uuid.uuid4()}", pepper=horde.pepper,
            now=horde.clock.now(), concurrency=horde.settings.default_concurrency,
            moderator=True, trusted=True,
        )  # fmt: skip
    log.info("made the local user %s", new.user.alias)
    return str(new.api_key)


def _announce(url: str, key: str, elapsed: float) -> None:
    click.echo(f"horde is up at {url} ({elapsed:.1f}s)")
    click.echo(f"API key: {key}")
    click.echo(f'try: HORDE_URL={url} HORDE_API_KEY={key} horde generate text "Once upon a time"')
    sys.stdout.flush()


def _write_worker_config(settings: Settings) -> Path:
    import yaml

    config = {
        "name": f"local worker {socket.gethostname()}"[:60],
        "kinds": ["text", "alchemy"],
        "data_dir": str(settings.data_dir),
        "shutdown_timeout": WORKER_SHUTDOWN,
        "text": {"backend": "llamacpp"},
    }
    path = settings.data_dir / WORKER_CONFIG
    path.write_text("# written by `horde up` at every start\n" + yaml.safe_dump(config, sort_keys=False))
    return path


async def _spawn_worker(config: Path, url: str, key: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k not in ("HORDE_WORKER_CONFIG", "HORDE_WORKER_NAME")}
    env.update(HORDE_URL=url, HORDE_API_KEY=key)
    args = [sys.executable, "-c", WORKER_BOOT, str(os.getpid()), "worker", "--config", str(config)]
    return await asyncio.create_subprocess_exec(
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # a terminal's Ctrl-C reaches `horde up` only, which stops it in order
    )


async def _relay(worker: asyncio.subprocess.Process, *, started: float) -> None:
    """The worker's log lines on our stderr, marked as its; "worker ready" on stdout once it serves text."""
    assert worker.stdout is not None
    ready = False
    async for raw in worker.stdout:
        line = raw.decode(errors="replace")
        sys.stderr.write("worker | " + line)
        sys.stderr.flush()
        if not ready and READY_MARK in line:  # the worker's "serving text as ..." (horde.worker.loop)
            ready = True
            click.echo(
                f"worker ready ({time.monotonic() - started:.1f}s): {line.split(READY_MARK, 1)[1].strip()}"
            )
            sys.stdout.flush()
