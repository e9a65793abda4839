"""The S3-compatible storage backend against a real S3 server (moto's server mode on a free port)."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from horde.server.images.backends import open_storage
from horde.server.images.s3 import S3Storage
from horde.server.state import Horde
from tests.conftest import make_settings
from tests.helpers import V2
from tests.s3 import S3Server

REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


def _webp(color: tuple[int, int, int] = (0, 90, 180)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(out, format="WEBP")
    return out.getvalue()


@pytest.fixture
def storage(s3_server: S3Server, tmp_path: Path) -> S3Storage:
    settings = make_settings("sqlite+aiosqlite://", tmp_path, **s3_server.settings(s3_server.new_bucket()))
    store, identity = open_storage(settings, signing=b"unused")
    assert isinstance(store, S3Storage)
    assert identity == f"s3:{s3_server.endpoint}/{settings.s3_bucket}"
    return store


async def test_put_get_delete(storage: S3Storage) -> None:
    await storage.put("a.webp", b"first")
    await storage.put("a.webp", b"second")
    assert await storage.get("a.webp") == b"second"
    assert await storage.get("missing.webp") is None
    await storage.delete("a.webp")
    await storage.delete("a.webp")  # deleting what is gone is not an error
    assert await storage.get("a.webp") is None
    with pytest.raises(ValueError, match="invalid object key"):
        await storage.put("../escape", b"x")


async def test_presigned_put_then_presigned_get(storage: S3Storage) -> None:
    # (moto does not check signatures, so a forged URL is S3's business and not tested here)
    data = _webp()
    async with httpx.AsyncClient() as http:
        upload = await http.put(storage.upload_url("job.webp"), content=data)
        assert upload.status_code == 200, upload.text
        download = await http.get(storage.download_url("job.webp"))
        assert download.status_code == 200
        assert download.content == data
        assert await storage.get("job.webp") == data


async def test_purge_deletes_only_what_is_older_than_the_cutoff(storage: S3Storage) -> None:
    for i in range(3):
        await storage.put(f"old{i}.webp", b"o")
    cutoff = time.time() + 1  # S3 times are in whole seconds: everything above counts as older
    assert await storage.purge(cutoff - 3600) == 0
    assert await storage.purge(cutoff) == 3
    assert await storage.get("old0.webp") is None
    await storage.put("new.webp", b"n")
    assert await storage.purge(time.time() - 3600) == 0
    assert await storage.get("new.webp") == b"n"


@pytest.fixture
def settings_overrides(s3_server: S3Server) -> dict[str, Any]:
    return s3_server.settings(s3_server.new_bucket())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_image_round_trip_through_the_bucket(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    """A worker uploads to the presigned PUT it was popped; the client reads the presigned GET."""
    headers, endpoint = {"apikey": api_key}, horde.settings.s3_endpoint
    body = {
        "prompt": "a boat",
        "params": {"n": 1, "steps": 5},
        "models": ["stable_diffusion"],
        "source_image": base64.b64encode(_webp()).decode(),
    }
    queued = await client.post(f"{V2}/generate/async", json=body, headers=headers)
    assert queued.status_code == 202, queued.text
    pop = {"name": "s3 worker", "models": ["stable_diffusion"], "bridge_agent": REGEN, "max_pixels": 1024**2}
    job = (await client.post(f"{V2}/generate/pop", json=pop, headers=headers)).json()
    result = _webp((250, 10, 10))
    async with httpx.AsyncClient() as outside:  # the bucket, not the horde
        assert job["r2_upload"].startswith(endpoint) and "X-Amz-Signature" in job["r2_upload"]
        assert (await outside.put(job["r2_upload"], content=result)).status_code == 200
        source = await outside.get(job["source_image"])  # re-encoded into the bucket by the horde
        assert Image.open(io.BytesIO(source.content)).size == (64, 64)
        submit = {"id": job["id"], "generation": "R2", "seed": 1, "state": "ok"}
        assert (await client.post(f"{V2}/generate/submit", json=submit, headers=headers)).status_code == 200
        status = (await client.get(f"{V2}/generate/status/{queued.json()['id']}")).json()
        assert status["done"] is True
        img = status["generations"][0]["img"]
        assert "X-Amz-Signature" in img
        assert (await outside.get(img)).content == result
