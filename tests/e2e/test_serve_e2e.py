"""The real `horde serve` process on SQLite, driven over HTTP by a scripted worker and client.

Text, image (n=2, r2 true and false) and alchemy round trips, cancel, lease expiry and re-queue,
a faulted request and a webhook delivery, with leases of a few seconds (ADR 0004).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import HordeServer, _free_port, _horde_command, _server_env, _stop, _wait_ready

pytestmark = pytest.mark.e2e
REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HordeServer]:
    """A SQLite horde with 3-second text leases and a sweep every 0.5 s."""
    import subprocess

    data_dir = tmp_path_factory.mktemp("serve-e2e")
    port = _free_port()
    env = _server_env(data_dir, port, f"sqlite+aiosqlite:///{data_dir / 'horde.sqlite3'}")
    # text leases of 3 s (the lease-expiry test waits for one); image leases as usual (150 s): a busy
    # machine must not expire an image job between its pop and its upload
    env.update(HORDE_TEXT_JOB_TTL="3", HORDE_SWEEP_INTERVAL="0.5", HORDE_WEBHOOK_TRIES="3")
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _horde_command(port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    horde = HordeServer(f"http://127.0.0.1:{port}", "sqlite", log_path, process)
    _wait_ready(horde)
    yield horde
    _stop(horde)


def _webp(size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (0, 90, 180)).save(out, format="WEBP")
    return out.getvalue()


def _wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_text_round_trip_and_webhook(server: HordeServer, tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["content-length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    key = server.api_key()
    try:
        body = {
            "prompt": "Hello",
            "params": {"max_length": 16},
            "webhook": f"http://127.0.0.1:{hook.server_port}/h",
        }
        request = httpx.post(f"{server.api}/generate/text/async", json=body, headers={"apikey": key})
        assert request.status_code == 202, request.text
        request_id = request.json()["id"]
        pop = httpx.post(
            f"{server.api}/generate/text/pop", json={"name": "e2e text worker"}, headers={"apikey": key}
        )
        job = pop.json()
        assert job["payload"]["prompt"] == "Hello"
        assert job["ttl"] >= 1
        submit = httpx.post(
            f"{server.api}/generate/text/submit",
            json={"id": job["id"], "generation": "world"},
            headers={"apikey": key},
        )
        assert submit.status_code == 200
        status = httpx.get(f"{server.api}/generate/text/status/{request_id}").json()
        assert status["done"] is True
        assert status["generations"][0]["text"] == "world"
        delivered = _wait_for(lambda: received)
        assert delivered[0]["request"] == request_id
        assert delivered[0]["id"] == job["id"]
    finally:
        hook.shutdown()


def test_image_round_trips(server: HordeServer) -> None:
    key = server.api_key()
    for r2 in (True, False):
        body = {"prompt": "a boat", "params": {"n": 2, "steps": 5}, "r2": r2}
        request_id = httpx.post(f"{server.api}/generate/async", json=body, headers={"apikey": key}).json()[
            "id"
        ]
        handed = 0
        while handed < 2:
            pop = {"name": "e2e image worker", "bridge_agent": REGEN, "amount": 2, "max_pixels": 1024 * 1024}
            job = httpx.post(f"{server.api}/generate/pop", json=pop, headers={"apikey": key}).json()
            assert job["id"] is not None
            for job_id, upload in zip(job["ids"], job["r2_uploads"], strict=True):
                if r2:
                    assert httpx.put(upload, content=_webp()).status_code == 200
                    generation = "R2"
                else:
                    generation = base64.b64encode(_webp()).decode()
                submit = {"id": job_id, "generation": generation, "seed": 3, "state": "ok"}
                assert (
                    httpx.post(
                        f"{server.api}/generate/submit", json=submit, headers={"apikey": key}
                    ).status_code
                    == 200
                )
                handed += 1
        status = httpx.get(f"{server.api}/generate/status/{request_id}").json()
        assert status["done"] is True
        assert len(status["generations"]) == 2
        img = status["generations"][0]["img"]
        data = httpx.get(img).content if r2 else base64.b64decode(img)
        assert Image.open(io.BytesIO(data)).size == (64, 64)


def test_alchemy_round_trip(server: HordeServer) -> None:
    key = server.api_key()
    source = base64.b64encode(_webp(128)).decode()
    body = {"forms": [{"name": "caption"}, {"name": "nsfw"}], "source_image": source}
    request_id = httpx.post(f"{server.api}/interrogate/async", json=body, headers={"apikey": key}).json()[
        "id"
    ]
    pop = {"name": "e2e alchemist", "forms": ["caption", "nsfw"], "amount": 2}
    forms = httpx.post(f"{server.api}/interrogate/pop", json=pop, headers={"apikey": key}).json()["forms"]
    assert {f["form"] for f in forms} == {"caption", "nsfw"}
    assert httpx.get(forms[0]["source_image"]).status_code == 200
    for form in forms:
        result = {"caption": "blue"} if form["form"] == "caption" else {"nsfw": False}
        response = httpx.post(
            f"{server.api}/interrogate/submit",
            json={"id": form["id"], "result": result},
            headers={"apikey": key},
        )
        assert response.status_code == 200
        assert response.json() == {"reward": 1.0}  # SEMANTICS 4.3: caption and nsfw earn 1 kudos each
    status = httpx.get(f"{server.api}/interrogate/status/{request_id}").json()
    assert status["state"] == "done"
    results = {form["form"]: (form["state"], form["result"]) for form in status["forms"]}
    assert results == {"caption": ("done", {"caption": "blue"}), "nsfw": ("done", {"nsfw": False})}


def test_cancel_expiry_requeue_and_faults(server: HordeServer) -> None:
    key = server.api_key()
    api, headers = server.api, {"apikey": key}
    # cancel: queued jobs stop being handed out
    cancelled = httpx.post(
        f"{api}/generate/text/async", json={"prompt": "x", "params": {"n": 2}}, headers=headers
    )
    cancel_id = cancelled.json()["id"]
    assert httpx.delete(f"{api}/generate/text/status/{cancel_id}").status_code == 200
    assert httpx.get(f"{api}/generate/text/status/{cancel_id}").json()["done"] is True
    # lease expiry: a popped job not submitted within its ttl goes back to the queue
    request_id = httpx.post(f"{api}/generate/text/async", json={"prompt": "y"}, headers=headers).json()["id"]
    first = httpx.post(f"{api}/generate/text/pop", json={"name": "slow e2e worker"}, headers=headers).json()
    assert first["id"] is not None
    status = _wait_for(
        lambda: (s := httpx.get(f"{api}/generate/text/status/{request_id}").json())["restarted"] == 1 and s
    )
    assert status["waiting"] == 1
    late = httpx.post(
        f"{api}/generate/text/submit", json={"id": first["id"], "generation": "late"}, headers=headers
    )
    assert late.json()["rc"] == "AbortedGen"
    # faults: the expired lease was the first fault; two reported faults make three and fault the request
    for _ in range(2):
        job = httpx.post(
            f"{api}/generate/text/pop", json={"name": "broken e2e worker"}, headers=headers
        ).json()
        assert job["id"] is not None
        faulted = {"id": job["id"], "generation": "", "state": "faulted"}
        assert httpx.post(f"{api}/generate/text/submit", json=faulted, headers=headers).json() == {
            "reward": 0
        }
    final = httpx.get(f"{api}/generate/text/status/{request_id}").json()
    assert final["faulted"] is True
    assert final["done"] is True
    nothing = httpx.post(
        f"{api}/generate/text/pop", json={"name": "broken e2e worker"}, headers=headers
    ).json()
    assert nothing["id"] is None
