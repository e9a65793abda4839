"""Scheduled sweeps called directly, on the test's clock: request expiry."""

from __future__ import annotations

import httpx

from horde.server.jobs.scheduled import expire_requests
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
