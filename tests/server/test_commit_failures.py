"""A failed commit never reaches the client as success (STYLE.md: the request commits before answering)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from horde.server.jobs import scheduled
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests.helpers import V2, row_counts


class InjectedFailure(RuntimeError):
    pass


@contextmanager
def failing_commits(horde: Horde) -> Iterator[None]:
    """Every COMMIT of a transaction fails (the database is left as it was)."""

    def fail(_conn: Any) -> None:
        raise InjectedFailure("injected commit failure")

    engine = horde.db.engine.sync_engine
    event.listen(engine, "commit", fail)
    try:
        yield
    finally:
        event.remove(engine, "commit", fail)


@contextmanager
def failing_after(horde: Horde, fragment: str) -> Iterator[None]:
    """The first statement containing `fragment` runs, then its connection fails (autocommit paths)."""
    fired = False

    def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal fired
        if fragment in statement and not fired:
            fired = True
            raise InjectedFailure("injected failure after the statement")

    engine = horde.db.engine.sync_engine
    event.listen(engine, "after_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", fail)


async def test_async_request_commit_failure(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    with failing_commits(horde):
        response = await client.post(
            f"{V2}/generate/text/async", json={"prompt": "hi"}, headers={"apikey": api_key}
        )
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error", "rc": "InternalServerError"}
    assert await row_counts(horde) == (0, 0)


async def test_pop_failure_is_not_a_hand_out(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    await client.post(f"{V2}/generate/text/async", json={"prompt": "hi"}, headers={"apikey": api_key})
    pop = {"name": "fragile worker"}
    with failing_after(horde, "UPDATE jobs SET state"):
        failed = await client.post(f"{V2}/generate/text/pop", json=pop, headers={"apikey": api_key})
    assert failed.status_code == 500
    # the job the failed pop leased is a lease nobody holds: it comes back when the lease runs out
    clock.advance(horde.settings.text_job_ttl + 1)
    assert await scheduled.expire_leases(horde) == 1
    again = await client.post(f"{V2}/generate/text/pop", json=pop, headers={"apikey": api_key})
    assert again.json()["id"] is not None


async def test_submit_commit_failure(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    await client.post(f"{V2}/generate/text/async", json={"prompt": "hi"}, headers={"apikey": api_key})
    popped = (
        await client.post(f"{V2}/generate/text/pop", json={"name": "w1 worker"}, headers={"apikey": api_key})
    ).json()
    body = {"id": popped["id"], "generation": "done"}
    with failing_commits(horde):
        failed = await client.post(f"{V2}/generate/text/submit", json=body, headers={"apikey": api_key})
    assert failed.status_code == 500
    retried = await client.post(f"{V2}/generate/text/submit", json=body, headers={"apikey": api_key})
    assert retried.status_code == 200  # nothing was stored by the failed attempt, so the retry is paid once
    assert retried.json()["reward"] > 0
