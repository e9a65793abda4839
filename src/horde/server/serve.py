"""Process entry points: `horde serve` and `horde db upgrade`."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import multiprocess

from horde.server.app import create_app
from horde.server.config import Settings
from horde.server.db import open_database
from horde.server.migrate import upgrade_to_head
from horde.server.observe.logs import configure_logging
from horde.server.processes import ClosingProcess, ClosingServer


def app_from_environment() -> FastAPI:
    """The app of one of several server processes (`horde serve --workers N`): settings from HORDE_*."""
    settings = Settings()
    configure_logging(settings.log_format)  # a spawned process starts with no logging set up
    return create_app(settings)


def run_server(*, host: str | None = None, port: int | None = None, workers: int = 1) -> None:
    """Serve the API with uvicorn (uvloop, httptools, no access log), in `workers` processes."""
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_format)
    if workers > 1 and settings.effective_database_url.startswith("sqlite"):
        raise SystemExit("--workers needs PostgreSQL (HORDE_DATABASE_URL): one process owns a SQLite file")
    config = uvicorn.Config(
        "horde.server.serve:app_from_environment" if workers > 1 else create_app(settings),
        factory=workers > 1,
        workers=workers,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="info",
        log_config=None,  # uvicorn's records go through our formatter (observe/logs.py)
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        # the client's IP is built by the app from HORDE_TRUSTED_PROXIES (server/clientip.py)
        proxy_headers=False,
        timeout_worker_healthcheck=30,  # a process imports the whole server first: slow on a busy host
    )
    if workers == 1:
        ClosingServer(config).run()
        return
    # the processes read their settings from the environment: the command line's host and port too
    os.environ.update(HORDE_HOST=settings.host, HORDE_PORT=str(settings.port))
    # uvicorn builds each process's Server itself; its supervisor takes no server class, so the class
    # it instantiates is swapped for one that runs ClosingServer (pickled by name into the children)
    multiprocess.Process = ClosingProcess  # type: ignore[misc]
    multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()


async def run_scheduler() -> None:
    """The periodic sweeps as their own process (`horde scheduler`), until interrupted."""
    import asyncio

    from prometheus_client import start_http_server

    from horde.server.app import build_horde, close_horde
    from horde.server.cluster.nodes import registered
    from horde.server.observe.metrics import REGISTRY
    from horde.server.scheduler import Scheduler

    settings = Settings()
    configure_logging(settings.log_format)
    if settings.scheduler_metrics_port:  # the task series; no API here to serve /metrics
        start_http_server(settings.scheduler_metrics_port, addr=settings.host, registry=REGISTRY)
    horde = await build_horde(settings)
    scheduler = Scheduler(horde)
    try:
        async with registered(horde.db, horde.clock, storage=horde.storage_identity):
            horde.webhooks.start()
            scheduler.start()
            try:
                await asyncio.Event().wait()
            finally:
                await scheduler.stop()
                await horde.webhooks.stop()
    finally:
        await close_horde(horde)


async def verify_kudos() -> list[str]:
    """Problems in the kudos ledger (read-only: no server lock is taken, so it runs beside a server)."""
    from horde.server.kudos.service import verify

    settings = Settings()
    db = open_database(settings.effective_database_url, pool_size=1)
    try:
        async with db.autocommit() as conn:
            return await verify(conn)
    finally:
        await db.dispose()


async def list_problem_jobs(page: int) -> list[dict[str, object]]:
    """The jobs workers reported as CSAM, newest first (read-only; runs beside a server)."""
    from horde.server.jobs.problems import list_problem_jobs as listed

    settings = Settings()
    db = open_database(settings.effective_database_url, pool_size=1)
    try:
        async with db.autocommit() as conn:
            return [job.model_dump(mode="json") for job in await listed(conn, page=page)]
    finally:
        await db.dispose()


async def upgrade_database() -> None:
    settings = Settings()
    db = open_database(settings.effective_database_url, pool_size=1)
    try:
        await upgrade_to_head(db)
    finally:
        await db.dispose()
