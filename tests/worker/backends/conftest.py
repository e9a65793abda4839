"""Fixtures for the backend tests: a model cache that survives runs, and a fake inference server.

The fake server is real HTTP on 127.0.0.1 with an ephemeral port (stdlib ``ThreadingHTTPServer``); it
answers like an OpenAI-compatible or KoboldAI-compatible server and records every request body, so the
tests can assert what a backend sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def model_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir kept in pytest's cache, so the GGUF is assembled and ISNet fetched once per checkout."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache is None:
        return tmp_path_factory.mktemp("horde-backend-models")
    return Path(cache.mkdir("horde-backend-models"))


Route = Callable[["FakeServer", dict[str, Any]], tuple[int, Any]]


@dataclass
class FakeServer:
    """What the fake server was asked, and how it answers (``routes`` by "METHOD /path")."""

    routes: dict[str, Route]
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for _, p, body in self.requests if p == path]

    def hang(self, _body: dict[str, Any]) -> tuple[int, Any]:
        """A route that does not answer until the test ends (a server that hangs)."""
        self.release.wait(30)
        return 200, {}


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            server.requests.append((method, self.path, body))
            route = server.routes.get(f"{method} {self.path}")
            status, payload = route(server, body) if route else (404, {"detail": "not found"})
            raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    return Handler


@pytest.fixture
def fake_server() -> Iterator[Callable[[dict[str, Route]], FakeServer]]:
    """Start fake servers with the given routes; all are shut down after the test."""
    started: list[tuple[ThreadingHTTPServer, FakeServer]] = []

    def start(routes: dict[str, Route]) -> FakeServer:
        fake = FakeServer(routes=routes)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        httpd.daemon_threads = True
        fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append((httpd, fake))
        return fake

    yield start
    for httpd, fake in started:
        fake.release.set()
        httpd.shutdown()
        httpd.server_close()
