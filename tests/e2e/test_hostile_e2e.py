"""What a hostile client can do to a real `horde serve` (issue 10), over real HTTP, rate limits on.

The memory tests reset the server process's peak RSS (`/proc/PID/clear_refs`) and read it back after
the attack: it must not grow by 100 MB. Each test talks from a loopback address of its own
(127.0.0.N), so the per-IP rate limits of one test never meet another's.
"""

from __future__ import annotations

import base64
import io
import select
import socket
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import HordeServer, _free_port, _horde_command, _server_env, _stop, _wait_ready

pytestmark = pytest.mark.e2e
ANON = "0000000000"
REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HordeServer]:
    """A SQLite horde with its rate limits on and no trusted proxy (the default)."""
    data_dir = tmp_path_factory.mktemp("hostile-e2e")
    port = _free_port()
    env = _server_env(data_dir, port, f"sqlite+aiosqlite:///{data_dir / 'horde.sqlite3'}")
    env.update(HORDE_TEST_RATELIMIT_DISABLED="0")
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _horde_command(port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    horde = HordeServer(f"http://127.0.0.1:{port}", "sqlite", log_path, process)
    _wait_ready(horde)
    yield horde
    _stop(horde)


def _client(source: str) -> httpx.Client:
    """A client whose connections come from `source` (a loopback address of the test's own)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60)


def _status_field(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


class PeakRSS:
    """The growth of a process's peak resident memory over a block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.growth = 0

    def __enter__(self) -> PeakRSS:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # peak RSS := current RSS
        self.before = _status_field(self.pid, "VmRSS")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.growth = _status_field(self.pid, "VmHWM") - self.before


def bomb_png(width: int, height: int) -> bytes:
    """A 1-bit PNG of `width` x `height` zeros: kilobytes that decode to width*height bytes or more."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * 64) for _ in range(height // 64)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _post_raw(server: HordeServer, path: str, size: int, source: str, content_type: str) -> int | None:
    """POST `size` bytes from `source`, stopping as soon as the server answers; its status or None."""
    host, port = server.base_url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {size}\r\n\r\n"
    )
    chunk = b"a" * MB
    with socket.create_connection((host, int(port)), source_address=(source, 0), timeout=30) as sock:
        sock.sendall(head.encode())
        sent = 0
        while sent < size and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += len(chunk)
        try:
            answer = sock.recv(4096)
        except OSError:
            return None
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1") else None


def test_register_takes_no_large_body(server: HordeServer) -> None:
    with PeakRSS(server.process.pid) as peak:
        status = _post_raw(server, "/register", 300 * MB, "127.0.0.2", "application/x-www-form-urlencoded")
    assert status == 413
    assert peak.growth < 100 * MB, f"the server's peak RSS grew by {peak.growth / MB:.0f} MB"


def test_one_account_per_ip(server: HordeServer) -> None:
    with _client("127.0.0.3") as client:
        first = client.post(f"{server.base_url}/register", data={"username": "first"})
        second = client.post(f"{server.base_url}/register", data={"username": "second"})
    assert first.status_code == 201 and "API key" in first.text
    assert second.status_code == 429 and second.json()["rc"] == "TooManyRequests"


def test_decompression_bombs(server: HordeServer) -> None:
    bomb = base64.b64encode(bomb_png(7680, 8192)).decode()  # 63 Mpx in a few kilobytes
    huge = base64.b64encode(bomb_png(16384, 16384)).decode()  # 268 Mpx: more than any kind takes
    headers = {"apikey": ANON}
    with PeakRSS(server.process.pid) as peak, _client("127.0.0.4") as client:
        image = client.post(
            f"{server.api}/generate/async", headers=headers,
            json={"prompt": "a boat", "source_image": bomb, "params": {"steps": 5}},
        )  # fmt: skip
        too_large = client.post(
            f"{server.api}/interrogate/async", headers=headers,
            json={"source_image": huge, "forms": [{"name": "caption"}]},
        )  # fmt: skip
        time.sleep(1.0)  # the second interrogation of this second would be rate limited (2/s)
        tiles = client.post(
            f"{server.api}/interrogate/async", headers=headers,
            json={"source_image": bomb, "forms": [{"name": "RealESRGAN_x4plus"}]},
        )  # fmt: skip
    assert image.status_code == 400 and image.json()["rc"] == "SourceImageResolutionExceeded", image.text
    assert too_large.status_code == 400, too_large.text
    assert too_large.json()["rc"] == "SourceImageResolutionExceeded"
    assert tiles.status_code == 202, tiles.text  # 240 tiles: within alchemy's 255, stored undecoded
    assert peak.growth < 100 * MB, f"the server's peak RSS grew by {peak.growth / MB:.0f} MB"


def test_forwarded_for_is_not_believed_from_an_untrusted_peer(server: HordeServer) -> None:
    # image status: 10 a minute per IP and request id; a spoofed X-Forwarded-For must not reset it
    with _client("127.0.0.1") as client:
        answers = [
            client.get(
                f"{server.api}/generate/status/spoofed", headers={"X-Forwarded-For": f"198.51.100.{i}"}
            ).status_code
            for i in range(11)
        ]
    assert answers == [404] * 10 + [429]


def test_test_user_never_touches_the_anonymous_user(server: HordeServer) -> None:
    with _client("127.0.0.5") as client:
        refused = client.post(f"{server.api}/dev/test-user", json={"oauth_id": "anon", "moderator": True})
        assert refused.status_code == 403 and refused.json()["rc"] == "AnonForbiddenUserMod"
        anon = client.get(f"{server.api}/find_user", headers={"apikey": ANON}).json()
        assert anon["id"] == 0 and anon["moderator"] is False
        proxied = client.post(
            f"{server.api}/dev/test-user", json={}, headers={"X-Forwarded-For": "127.0.0.1"}
        )
        assert proxied.status_code == 403 and proxied.json()["rc"] == "Forbidden"


def test_non_finite_numbers_are_refused(server: HordeServer) -> None:
    head = '{"source_image": "https://example.com/x.png", "forms": [{"name": "caption", "payload": '
    bodies = [head + payload + "}]}" for payload in ('{"x": NaN}', '{"x": 1e999}', "[-Infinity]")]
    with _client("127.0.0.6") as client:
        for i, body in enumerate(bodies):
            if i:
                time.sleep(0.5)  # interrogations: 2 a second per IP
            answer = client.post(
                f"{server.api}/interrogate/async", content=body,
                headers={"apikey": ANON, "Content-Type": "application/json"},
            )  # fmt: skip
            assert answer.status_code == 400, answer.text
            assert answer.json()["message"] == "Input payload validation failed"
            assert "NaN and Infinity" in answer.json()["errors"]["payload"]


def test_prompt_sizes(server: HordeServer) -> None:
    headers = {"apikey": ANON}
    with _client("127.0.0.7") as client:
        text = client.post(
            f"{server.api}/generate/text/async", headers=headers,
            json={"prompt": "a" * (4 * MB + 1), "params": {"max_length": 16}},
        )  # fmt: skip
        image = client.post(
            f"{server.api}/generate/async", headers=headers,
            json={"prompt": "word " * 100 + "b" * 33 * 1024, "params": {"steps": 5}},
        )  # fmt: skip
    assert text.status_code == 400 and text.json()["rc"] == "InvalidPromptSize", text.text
    assert image.status_code == 400 and image.json()["rc"] == "InvalidPromptSize", image.text


def _image(fmt: str, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 90, 180)).save(out, format=fmt)
    return out.getvalue()


def _popped(client: httpx.Client, server: HordeServer, key: str) -> tuple[str, dict[str, Any]]:
    body = {"prompt": "a boat", "params": {"steps": 5, "width": 512, "height": 512}}
    accepted = client.post(f"{server.api}/generate/async", json=body, headers={"apikey": key})
    assert accepted.status_code == 202, accepted.text
    pop = {"name": "hostile e2e worker", "bridge_agent": REGEN, "max_pixels": 512 * 512}
    job: dict[str, Any] = client.post(f"{server.api}/generate/pop", json=pop, headers={"apikey": key}).json()
    assert job["id"] is not None, job
    return accepted.json()["id"], job


def test_signed_upload_takes_one_expected_image_until_submit(server: HordeServer) -> None:
    key = server.api_key("uploader")
    with _client("127.0.0.8") as client:
        request_id, job = _popped(client, server, key)
        upload = job["r2_upload"]
        html = b"<html><script>alert(1)</script></html>"
        assert client.put(upload, content=html).status_code == 400  # not an image
        assert client.put(upload, content=_image("WEBP", (1024, 512))).status_code == 400  # too wide
        assert client.put(upload, content=_image("TIFF", (64, 64))).status_code == 400  # not a stored format
        assert (
            client.put(upload, content=b"RIFF" + b"\0" * (2 * MB)).status_code == 413
        )  # more than 512x512 needs
        good = _image("WEBP", (512, 512))
        assert client.put(upload, content=good).status_code == 200
        assert client.put(upload, content=good).status_code == 200  # a retry of the same upload
        assert client.put(upload, content=_image("PNG", (512, 512))).status_code == 403  # once
        submit = {"id": job["id"], "generation": "R2", "seed": 1, "state": "ok"}
        assert (
            client.post(f"{server.api}/generate/submit", json=submit, headers={"apikey": key}).status_code
            == 200
        )
        assert client.put(upload, content=good).status_code == 403  # submitted: the URL is spent
        status = client.get(f"{server.api}/generate/status/{request_id}").json()
        served = client.get(status["generations"][0]["img"])
    assert served.status_code == 200 and served.content == good
    assert served.headers["content-type"] == "image/webp"
    assert served.headers["x-content-type-options"] == "nosniff"
