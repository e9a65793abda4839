"""A restart after downtime longer than a job's lease is not the worker's fault (issue 10).

The lease ran out while no horde was running: the restarted horde puts the job back in the queue
without a fault, so three such restarts do not fault the request; a lease that runs out while the
horde runs is still a fault.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from horde.server.app import build_horde, close_horde, create_app
from horde.server.jobs import scheduled
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests.helpers import V2

# restarted hordes open connections of their own: they must see committed rows
pytestmark = pytest.mark.committed


@asynccontextmanager
async def _serving(horde: Horde) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(horde.settings, horde=horde)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _pop(client: httpx.AsyncClient, key: str) -> str | None:
    body = {"name": "restart worker", "models": ["test-model"]}
    response = await client.post(f"{V2}/generate/text/pop", json=body, headers={"apikey": key})
    assert response.status_code == 200, response.text
    job_id: str | None = response.json()["id"]
    return job_id


async def test_restarts_after_downtime_fault_nothing(
    horde: Horde, client: httpx.AsyncClient, api_key: str, clock: FakeClock
) -> None:
    body = {"prompt": "Once upon a time", "params": {"max_length": 32}}
    accepted = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    request_id = accepted.json()["id"]
    ttl = horde.settings.text_job_ttl
    running = horde
    try:
        for _ in range(3):
            async with _serving(running) as serving:
                assert await _pop(serving, api_key) is not None
            await close_horde(running)  # down for longer than the lease
            clock.advance(ttl + 60)
            running = await build_horde(horde.settings, clock=clock, migrate=False, catalog=horde.catalog)
            assert await scheduled.expire_leases(running) == 1
        async with _serving(running) as serving:
            status = (await serving.get(f"{V2}/generate/text/status/{request_id}")).json()
            assert status["faulted"] is False and status["restarted"] == 0 and status["waiting"] == 1
            job_id = await _pop(serving, api_key)
            assert job_id is not None
        clock.advance(ttl + 1)  # this lease runs out while the horde runs: the worker's fault
        assert await scheduled.expire_leases(running) == 1
        async with _serving(running) as serving:
            status = (await serving.get(f"{V2}/generate/text/status/{request_id}")).json()
            assert status["restarted"] == 1 and status["waiting"] == 1
    finally:
        if running is not horde:
            await close_horde(running)
