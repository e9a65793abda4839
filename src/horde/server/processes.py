"""Uvicorn's server and worker process, made to answer parked requests first when shutting down.

Kept apart from `serve.py` and free of server imports: `horde serve --workers N` pickles the process
class by name into each child, which imports this module before it can answer the supervisor's health
check, so it must import fast.
"""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import multiprocess


class ClosingServer(uvicorn.Server):
    """Uvicorn that first answers every parked request (`Horde-Wait`) when it starts shutting down,
    so the graceful shutdown is not spent waiting for long polls."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app: object = self.config.app if not isinstance(self.config.app, str) else self.config.loaded_app
        while not hasattr(app, "state") and hasattr(app, "app"):  # under uvicorn's own wrappers
            app = app.app
        horde = getattr(getattr(app, "state", None), "horde", None)
        if horde is not None:
            horde.notifier.close()
        await super().shutdown(sockets)


class ClosingProcess(multiprocess.Process):
    """One of `horde serve --workers N`'s processes, running a ClosingServer."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = ClosingServer(config=self.config)
        return self._server
