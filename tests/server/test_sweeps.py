"""Scheduled sweeps called directly, on the test's clock: request expiry, object purge, lease expiry."""

from __future__ import annotations

import os

import httpx

from horde.server.images.storage import STORE_ID_FILE
from horde.server.jobs.scheduled import expire_leases, expire_requests, purge_objects
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests.helpers import V2, row_counts

DAYS = 24 * 3600


async def test_expire_requests_deletes_idle_requests_only(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    keyed = {"apikey": api_key}
    for prompt in ("left alone", "being worked on"):
        response = await client.post(f"{V2}/generate/text/async", json={"prompt": prompt}, headers=keyed)
        assert response.status_code == 202, response.text
    popped = await client.post(f"{V2}/generate/text/pop", json={"name": "slow worker"}, headers=keyed)
    assert popped.json()["id"] is not None
    assert await expire_requests(horde) == 0  # nothing has expired yet
    assert await row_counts(horde) == (2, 2)
    clock.advance(10 * DAYS)
    assert await expire_requests(horde) == 1  # the queued one; the one a worker holds stays
    assert await row_counts(horde) == (1, 1)
    assert await expire_requests(horde) == 0  # idempotent


async def test_purge_objects_deletes_only_objects_older_than_the_retention(
    horde: Horde, clock: FakeClock
) -> None:
    retention = horde.settings.result_retention
    await horde.storage.put("old.webp", b"old")
    await horde.storage.put("young.webp", b"young")
    root = horde.settings.data_dir / "objects"
    os.utime(root / "old.webp", (clock.now() - retention - 1,) * 2)
    os.utime(root / "young.webp", (clock.now() - retention + 60,) * 2)
    assert await purge_objects(horde) == 1
    assert await horde.storage.get("old.webp") is None
    assert await horde.storage.get("young.webp") == b"young"
    clock.advance(59)
    assert await purge_objects(horde) == 0  # one second short of the retention
    clock.advance(2)
    assert await purge_objects(horde) == 1
    assert await horde.storage.get("young.webp") is None
    assert (root / STORE_ID_FILE).is_file()  # the directory's identity outlives every purge


async def test_image_lease_expires_after_its_own_ttl(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    keyed = {"apikey": api_key}
    params = {"steps": 100, "width": 1024, "height": 1024}
    body = {"prompt": "a lighthouse", "params": params, "models": ["stable_diffusion"], "r2": False}
    response = await client.post(f"{V2}/generate/async", json=body, headers=keyed)
    assert response.status_code == 202, response.text
    request_id = response.json()["id"]
    worker = {"name": "image worker", "models": ["stable_diffusion"], "max_pixels": 1024 * 1024}
    job_id = (await client.post(f"{V2}/generate/pop", json=worker, headers=keyed)).json()["id"]
    assert job_id is not None
    ttl = 30 + 100 * 2 * (1024 * 1024) / (512 * 512)  # base + steps * 2 * megapixel factor (830 s)
    clock.advance(ttl - 1)
    assert await expire_leases(horde) == 0  # still leased
    assert (await client.post(f"{V2}/generate/pop", json=worker, headers=keyed)).json()["id"] is None
    clock.advance(2)
    assert await expire_leases(horde) == 1
    status = (await client.get(f"{V2}/generate/status/{request_id}")).json()
    assert status["restarted"] == 1 and status["waiting"] == 1
    again = (await client.post(f"{V2}/generate/pop", json=worker, headers=keyed)).json()["id"]
    assert again not in (None, job_id)
    late = {"id": job_id, "generation": "R2", "seed": 1}
    refused = await client.post(f"{V2}/generate/submit", json=late, headers=keyed)
    assert refused.status_code == 400 and refused.json()["rc"] == "AbortedGen", refused.text
