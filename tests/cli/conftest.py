"""A real `horde serve` for the CLI tests, scripted workers that answer jobs, and a way to run `horde`.

The server is this package's own (one per test session and xdist group): one fault ends a request
(`HORDE_FAULT_LIMIT=1`) and no model reference is loaded, so any model name is accepted. Each test
names its own model, so a scripted worker takes only that test's jobs.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from horde.cli import main
from tests.e2e.conftest import HordeServer, _free_port, _horde_command, _server_env, _stop, _wait_ready

REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


@pytest.fixture(scope="session")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HordeServer]:
    data_dir = tmp_path_factory.mktemp("cli-horde")
    port = _free_port()
    env = _server_env(data_dir, port, f"sqlite+aiosqlite:///{data_dir / 'horde.sqlite3'}")
    env.pop("HORDE_MODEL_REFERENCE_IMAGE", None)
    env.pop("HORDE_MODEL_REFERENCE_TEXT", None)
    env.update(HORDE_FAULT_LIMIT="1", HORDE_ALCHEMY_FAULT_LIMIT="1")
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _horde_command(port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = HordeServer(f"http://127.0.0.1:{port}", "sqlite", log_path, process)
    _wait_ready(server)
    yield server
    _stop(server)


@pytest.fixture
def model() -> str:
    """A model name of this test's own."""
    return f"cli-test/{uuid.uuid4().hex[:10]}"


@dataclass
class Cli:
    """Runs `horde ...` in-process (click's runner) against the test server, with HORDE_URL/KEY set."""

    url: str
    api_key: str

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        base = {"HORDE_URL": self.url, "HORDE_API_KEY": self.api_key}
        return runner.invoke(main, list(args), env={**base, **(env or {})}, catch_exceptions=False)


@pytest.fixture
def cli(cli_server: HordeServer) -> Cli:
    return Cli(cli_server.base_url, cli_server.api_key())


def run_horde(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`horde ...` as a real process (the installed entry point), with ``env`` on a clean environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_")}
    entry = _horde_command(0)[:-5]  # without "serve --host H --port P"
    return subprocess.run(
        [*entry, *args], env={**base, **env}, capture_output=True, text=True, timeout=120, check=False
    )


# Scripted workers -------------------------------------------------------------------------------------
@dataclass
class ScriptedWorker:
    """A thread that pops one kind of job for ``model``/``forms`` and answers each with ``answer(job)``."""

    server: HordeServer
    api_key: str
    kind: str  # text, image, alchemy
    answer: Callable[[dict[str, Any]], dict[str, Any]]
    model: str = ""
    forms: list[str] = field(default_factory=list)
    name: str = field(default_factory=lambda: f"scripted {uuid.uuid4().hex[:8]}")
    popped: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ScriptedWorker:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)

    def _loop(self) -> None:
        headers = {"apikey": self.api_key}
        with httpx.Client(base_url=self.server.api, headers=headers, timeout=30) as http:
            while not self._stop.is_set():
                reply = http.post(self._pop_path, json=self._pop_body(), headers={"Horde-Wait": "1"})
                reply.raise_for_status()
                job = reply.json()
                if self.kind == "alchemy":
                    for form in job.get("forms", []):
                        self.popped.append(form)
                        if form.get("r2_upload"):  # a post-processor: the image goes to the horde's storage
                            httpx.put(form["r2_upload"], content=webp(128)).raise_for_status()
                        http.post("/interrogate/submit", json={"id": form["id"], **self.answer(form)})
                elif job.get("id"):
                    self.popped.append(job)
                    uploads = job.get("r2_uploads") or [None] * len(job["ids"])
                    for job_id, upload in zip(job["ids"], uploads, strict=True):
                        body = {"id": job_id, **self.answer({**job, "id": job_id})}
                        if upload and body.get("state") != "faulted":  # the request asked for r2
                            httpx.put(upload, content=base64.b64decode(body["generation"])).raise_for_status()
                            body["generation"] = "R2"
                        http.post(self._submit_path, json=body).raise_for_status()

    @property
    def _pop_path(self) -> str:
        return {"text": "/generate/text/pop", "image": "/generate/pop", "alchemy": "/interrogate/pop"}[
            self.kind
        ]

    @property
    def _submit_path(self) -> str:
        return {"text": "/generate/text/submit", "image": "/generate/submit"}[self.kind]

    def _pop_body(self) -> dict[str, Any]:
        if self.kind == "alchemy":
            return {"name": self.name, "forms": self.forms, "bridge_agent": REGEN}
        body: dict[str, Any] = {"name": self.name, "models": [self.model]}
        if self.kind == "image":
            body.update(bridge_agent=REGEN, max_pixels=1024 * 1024)
        return body


def webp(size: int = 64, colour: tuple[int, int, int] = (0, 90, 180)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="WEBP")
    return out.getvalue()


def image_answer(job: dict[str, Any]) -> dict[str, Any]:
    """Answer an image job with a webp (uploaded to the horde's storage when the request asked for r2)."""
    return {"generation": base64.b64encode(webp()).decode(), "seed": 7, "state": "ok"}


def png_file(path: Path) -> Path:
    Image.new("RGB", (32, 32), (200, 10, 10)).save(path, format="PNG")
    return path
