"""Refusals that no other test asserted, each by its exact rc (tests/test_rc_coverage.py lists them),
and source images: size limits on base64 and on URLs, and a source image fetched from a URL."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.helpers import V2, png_b64, png_bytes, row_counts

MAX_SOURCE = 4000  # bytes: small, so the tests need no big images


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"source_max_bytes": MAX_SOURCE}


def image(params: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"prompt": "a cat", "params": {"n": 1, **(params or {})}, **fields}


SMALL = png_b64(16, 16)
IMAGE_CASES = [
    ("TooManyLoras", image({"loras": [{"name": str(i)} for i in range(6)]})),
    ("BadLoraVersion", image({"loras": [{"name": "not-a-number", "is_version": True}]})),
    ("TooManyTIs", image({"tis": [{"name": str(i)} for i in range(21)]})),
    ("ControlNetSourceMissing", image({"control_type": "canny"})),
    (
        "ControlNetInpaintingMismatch",
        image({"control_type": "canny"}, source_image=SMALL, source_processing="inpainting"),
    ),
    ("InvalidTransparencyImg2Img", image({"transparent": True}, source_image=SMALL)),
]


@pytest.mark.parametrize(("rc", "body"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
async def test_image_request_refusals(
    client: httpx.AsyncClient, api_key: str, horde: Any, rc: str, body: Any
) -> None:
    response = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": api_key})
    assert response.status_code == 400, response.text
    assert response.json()["rc"] == rc
    assert await row_counts(horde) == (0, 0)


async def test_stop_sequence_limits(client: httpx.AsyncClient, api_key: str) -> None:
    keyed = {"apikey": api_key}
    many = {"prompt": "hi", "params": {"stop_sequence": [f"s{i}" for i in range(129)]}}
    response = await client.post(f"{V2}/generate/text/async", json=many, headers=keyed)
    assert response.status_code == 400 and response.json()["rc"] == "TooManyStopSequences"
    long = {"prompt": "hi", "params": {"stop_sequence": ["x" * 1001, "y" * 1000]}}
    response = await client.post(f"{V2}/generate/text/async", json=long, headers=keyed)
    assert response.status_code == 400 and response.json()["rc"] == "ExcessiveStopSequence"
    at_limit = {"prompt": "hi", "params": {"stop_sequence": ["x" * 1000, "y" * 1000]}}
    assert (await client.post(f"{V2}/generate/text/async", json=at_limit, headers=keyed)).status_code == 202


async def test_bad_priority_usernames(client: httpx.AsyncClient, api_key: str) -> None:
    for names in (["no-hash"], [f"user#{i}" for i in range(200)]):
        pop = {"name": "picky worker", "priority_usernames": names}
        response = await client.post(f"{V2}/generate/text/pop", json=pop, headers={"apikey": api_key})
        assert response.status_code == 400, response.text
        assert response.json()["rc"] == "InvalidPriorityUsername"


async def test_status_of_a_malformed_or_unknown_id(client: httpx.AsyncClient) -> None:
    for raw in ("not-a-uuid", "7f1c1a9e-0000-4000-8000-000000000000"):
        response = await client.get(f"{V2}/generate/text/status/{raw}")
        assert response.status_code == 404
        assert response.json() == {"message": f"Request with ID '{raw}' not found", "rc": "RequestNotFound"}


@pytest.fixture
def image_server() -> Iterator[str]:
    """Serves /small.png (under the limit) and /big.png (over it) on a loopback port."""
    files = {"/small.png": png_bytes(16, 16), "/big.png": b"\x89PNG" + bytes(MAX_SOURCE * 2)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = files.get(self.path)
            self.send_response(200 if data else 404)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_source_image_size_limits(
    client: httpx.AsyncClient, api_key: str, horde: Any, image_server: str
) -> None:
    keyed = {"apikey": api_key}
    big_b64 = base64.b64encode(b"\x89PNG" + bytes(MAX_SOURCE * 2)).decode()
    for source in (big_b64, f"{image_server}/big.png"):
        response = await client.post(f"{V2}/generate/async", json=image(source_image=source), headers=keyed)
        assert response.status_code == 400, response.text
        assert response.json()["rc"] == "SourceImageSizeExceeded"
    assert await row_counts(horde) == (0, 0)


async def test_source_image_from_a_url(
    client: httpx.AsyncClient, api_key: str, horde: Any, image_server: str
) -> None:
    keyed = {"apikey": api_key}
    body = image(source_image=f"{image_server}/small.png")
    accepted = await client.post(f"{V2}/generate/async", json=body, headers=keyed)
    assert accepted.status_code == 202, accepted.text
    stored = await horde.storage.get(f"{accepted.json()['id']}_src.webp")
    assert stored is not None and stored[:4] == b"RIFF"  # fetched, checked and kept as WebP
    missing = image(source_image=f"{image_server}/nothing.png")
    refused = await client.post(f"{V2}/generate/async", json=missing, headers=keyed)
    assert refused.status_code == 400 and refused.json()["rc"] == "SourceImageUnreadable"


async def _pop(
    client: httpx.AsyncClient, key: str, name: str, path: str = "generate/text/pop"
) -> httpx.Response:
    return await client.post(f"{V2}/{path}", json={"name": name}, headers={"apikey": key})


async def test_proxied_account_is_refused(client: httpx.AsyncClient, api_key: str) -> None:
    proxied = {"prompt": "hi", "proxied_account": "someone"}
    response = await client.post(f"{V2}/generate/text/async", json=proxied, headers={"apikey": api_key})
    assert response.status_code == 400 and response.json()["rc"] == "OnlyServiceAccountProxy"


async def test_worker_name_refusals(client: httpx.AsyncClient, api_key: str) -> None:
    response = await _pop(client, api_key, "abc")
    assert response.status_code == 400 and response.json()["rc"] == "TooLongWorkerName"
    assert (await _pop(client, api_key, "Text Worker")).status_code == 200
    response = await _pop(client, api_key, "Text Worker", "generate/pop")
    assert response.status_code == 400 and response.json()["rc"] == "PolymorphicNameConflict"


async def test_trusted_worker_count_limit(client: httpx.AsyncClient, api_key: str) -> None:
    for i in range(20):
        assert (await _pop(client, api_key, f"big worker {i}")).status_code == 200
    response = await _pop(client, api_key, "big worker 20")
    assert response.status_code == 403 and response.json()["rc"] == "TooManyWorkersTrusted"
    assert (await _pop(client, api_key, "big worker 0")).status_code == 200  # a known worker still pops


async def _plain_user(client: httpx.AsyncClient, name: str) -> str:
    body = {"oauth_id": f"oauth-{name}", "username": name, "trusted": False, "moderator": False}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


async def test_untrusted_account_refusals(client: httpx.AsyncClient) -> None:
    plain = await _plain_user(client, "newcomer")
    unbatched = {"prompt": "hi", "disable_batching": True}
    response = await client.post(f"{V2}/generate/text/async", json=unbatched, headers={"apikey": plain})
    assert response.status_code == 400 and response.json()["rc"] == "RequiresTrust"
    for i in range(3):
        assert (await _pop(client, plain, f"small worker {i}")).status_code == 200
    response = await _pop(client, plain, "small worker 3")
    assert response.status_code == 403 and response.json()["rc"] == "TooManyWorkers"
    neighbour = await _plain_user(client, "neighbour")  # the same IP already runs 3 workers
    response = await _pop(client, neighbour, "neighbour worker")
    assert response.status_code == 403 and response.json()["rc"] == "TooManySameIPs"
