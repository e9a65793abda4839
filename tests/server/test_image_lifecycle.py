"""Image requests end to end over the API: batching, r2 uploads, base64 results, sources."""

from __future__ import annotations

import base64
import io

import httpx
from PIL import Image

from tests.helpers import V2, png_b64, webp_b64

REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


async def _request(client: httpx.AsyncClient, key: str, **fields: object) -> str:
    body = {"prompt": "a lighthouse at dusk", "params": {"n": 2, "steps": 10}, "models": ["stable_diffusion"]}
    body.update(fields)
    response = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": key})
    assert response.status_code == 202, response.text
    assert response.json()["kudos"] >= 1
    request_id: str = response.json()["id"]
    return request_id


async def _pop(client: httpx.AsyncClient, key: str, **fields: object) -> dict[str, object]:
    body = {
        "name": "image worker one",
        "models": ["stable_diffusion"],
        "bridge_agent": REGEN,
        "amount": 2,
        "max_pixels": 1024 * 1024,
    }
    body.update(fields)
    response = await client.post(f"{V2}/generate/pop", json=body, headers={"apikey": key})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


async def test_r2_round_trip_with_batching(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = await _request(client, api_key, r2=True)
    popped = await _pop(client, api_key)
    ids, uploads = popped["ids"], popped["r2_uploads"]
    assert isinstance(ids, list) and len(ids) == 2
    assert isinstance(uploads, list) and len(uploads) == 2
    payload = popped["payload"]
    assert isinstance(payload, dict)
    assert payload["ddim_steps"] == 10 and payload["n_iter"] == 2
    assert payload["prompt"] == "a lighthouse at dusk"
    for job_id, upload in zip(ids, uploads, strict=True):
        put = await client.put(_path(upload), content=base64.b64decode(webp_b64()))
        assert put.status_code == 200
        body = {"id": job_id, "generation": "R2", "state": "ok", "seed": 42}
        submitted = await client.post(f"{V2}/generate/submit", json=body, headers={"apikey": api_key})
        assert submitted.status_code == 200, submitted.text
    check = (await client.get(f"{V2}/generate/check/{request_id}")).json()
    assert check["done"] is True and check["finished"] == 2 and "generations" not in check
    status = (await client.get(f"{V2}/generate/status/{request_id}")).json()
    assert len(status["generations"]) == 2
    image = await client.get(_path(status["generations"][0]["img"]))
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == (64, 64)
    assert status["generations"][0]["seed"] == "42"


async def test_base64_result_inline_when_r2_false(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = await _request(client, api_key, r2=False, params={"n": 1})
    popped = await _pop(client, api_key, amount=1)
    body = {"id": popped["id"], "generation": webp_b64(32, 32), "state": "ok", "seed": 7}
    submitted = await client.post(f"{V2}/generate/submit", json=body, headers={"apikey": api_key})
    assert submitted.status_code == 200, submitted.text
    status = (await client.get(f"{V2}/generate/status/{request_id}")).json()
    img = status["generations"][0]["img"]
    assert not img.startswith("http")
    assert Image.open(io.BytesIO(base64.b64decode(img))).size == (32, 32)


async def test_img2img_source_reaches_the_worker(client: httpx.AsyncClient, api_key: str) -> None:
    await _request(client, api_key, source_image=png_b64(), params={"n": 1, "denoising_strength": 0.5})
    popped = await _pop(client, api_key, amount=1)
    source = popped["source_image"]
    assert isinstance(source, str) and source.startswith("http://testserver/objects/")
    fetched = await client.get(_path(source))
    assert fetched.status_code == 200
    assert Image.open(io.BytesIO(fetched.content)).size == (64, 64)


async def test_unknown_bridge_gets_no_r2_work(client: httpx.AsyncClient, api_key: str) -> None:
    await _request(client, api_key)
    popped = await _pop(client, api_key, bridge_agent="Some Bridge:1.0:http://x")
    assert popped["id"] is None
    skipped = popped["skipped"]
    assert isinstance(skipped, dict) and skipped["bridge_version"] == 1 and skipped["max_pixels"] == 0


async def test_small_worker_skips_big_requests(client: httpx.AsyncClient, api_key: str) -> None:
    await _request(client, api_key, params={"n": 1, "width": 1024, "height": 1024})
    popped = await _pop(client, api_key, max_pixels=512 * 512)
    assert popped["id"] is None
    skipped = popped["skipped"]
    assert isinstance(skipped, dict) and skipped["max_pixels"] == 1


async def test_cancel_stops_handing_out_jobs(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = await _request(client, api_key, params={"n": 3})
    first = await _pop(client, api_key, amount=1)
    cancelled = await client.delete(f"{V2}/generate/status/{request_id}")
    assert cancelled.status_code == 200
    assert cancelled.json()["waiting"] == 2  # the status from before the cancel
    assert (await _pop(client, api_key))["id"] is None
    body = {"id": first["id"], "generation": webp_b64(), "state": "ok", "seed": 1}
    late = await client.post(f"{V2}/generate/submit", json=body, headers={"apikey": api_key})
    assert late.status_code == 200  # a popped job may still be submitted
    status = (await client.get(f"{V2}/generate/status/{request_id}")).json()
    assert status["done"] is True and status["finished"] == 1
