"""Fixtures of the worker tests: the fake horde (see `tests.worker.fakes`) and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from horde.client import HordeClient, RetryPolicy
from tests.worker.fakes import FakeHorde


@pytest.fixture
def fake_horde() -> FakeHorde:
    return FakeHorde()


@pytest.fixture
async def horde_client(fake_horde: FakeHorde) -> AsyncIterator[HordeClient]:
    """A client of the fake horde with quick retries (no real waiting)."""
    client = HordeClient(
        "http://horde.test",
        "key",
        transport=httpx.MockTransport(fake_horde.handle),
        retry=RetryPolicy(attempts=4, base=0.01, cap=0.05),
    )
    yield client
    await client.aclose()
