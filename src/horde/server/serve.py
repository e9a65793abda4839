"""Process entry points: `horde serve` and `horde db upgrade`."""

from __future__ import annotations

import logging
import socket

import uvicorn

from horde.server.app import create_app
from horde.server.config import Settings
from horde.server.db import open_database
from horde.server.migrate import upgrade_to_head


class ClosingServer(uvicorn.Server):
    """Uvicorn that first answers every parked request (`Horde-Wait`) when it starts shutting down,
    so the graceful shutdown is not spent waiting for long polls."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        horde = getattr(getattr(app, "state", None), "horde", None)
        if horde is not None:
            horde.notifier.close()
        await super().shutdown(sockets)


def run_server(*, host: str | None = None, port: int | None = None) -> None:
    """Serve the API with uvicorn (uvloop, httptools, no access log)."""
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="info",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        # the client's IP is built by the app from HORDE_TRUSTED_PROXIES (server/clientip.py)
        proxy_headers=False,
    )
    ClosingServer(config).run()


async def run_scheduler() -> None:
    """The periodic sweeps as their own process (`horde scheduler`), until interrupted."""
    import asyncio

    from horde.server.app import build_horde, close_horde
    from horde.server.scheduler import Scheduler

    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    horde = await build_horde(settings)
    scheduler = Scheduler(horde)
    horde.webhooks.start()
    scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        await scheduler.stop()
        await horde.webhooks.stop()
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


async def upgrade_database() -> None:
    settings = Settings()
    db = open_database(settings.effective_database_url, pool_size=1)
    try:
        await upgrade_to_head(db)
    finally:
        await db.dispose()
