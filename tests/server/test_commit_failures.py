"""A failed commit never reaches the client as success (STYLE.md: the request commits before answering)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from horde.server.jobs import scheduled
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests.helpers import V2, row_counts


class InjectedFailure(RuntimeError):
    pass


async def test_async_request_commit_failure(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    """The database refuses the request's last write (its jobs): the request row goes with it.

    On PostgreSQL a request is queued in one statement (autocommit), on SQLite in a transaction."""
    async with refusing_inserts(horde, "jobs"):
        response = await client.post(
            f"{V2}/generate/text/async", json={"prompt": "hi"}, headers={"apikey": api_key}
        )
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error", "rc": "InternalServerError"}
    assert await row_counts(horde) == (0, 0)


@contextmanager
def failing_after_claim(horde: Horde, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The claim runs (on PostgreSQL it goes to the driver directly, past SQLAlchemy's events), then
    the pop's next database read fails, as a connection lost right after the claim would."""
    calls: list[int] = []

    async def fail(*_args: Any, **_kwargs: Any) -> Any:
        calls.append(1)
        raise InjectedFailure("injected failure after the claim")

    with monkeypatch.context() as patch:
        patch.setattr(horde.requests, "get", fail)
        yield calls


async def test_pop_failure_is_not_a_hand_out(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.post(f"{V2}/generate/text/async", json={"prompt": "hi"}, headers={"apikey": api_key})
    pop = {"name": "fragile worker"}
    with failing_after_claim(horde, monkeypatch) as calls:
        failed = await client.post(f"{V2}/generate/text/pop", json=pop, headers={"apikey": api_key})
    assert calls == [1]  # the claim had leased the job when the failure came
    assert failed.status_code == 500
    # the job the failed pop leased is a lease nobody holds: it comes back when the lease runs out
    clock.advance(horde.settings.text_job_ttl + 1)
    assert await scheduled.expire_leases(horde) == 1
    again = await client.post(f"{V2}/generate/text/pop", json=pop, headers={"apikey": api_key})
    assert again.json()["id"] is not None


@asynccontextmanager
async def refusing_inserts(horde: Horde, table: str) -> AsyncIterator[None]:
    """The database refuses every insert into `table` (a trigger), so a write that includes one fails.

    On PostgreSQL a submit completes in one statement (autocommit: its commit is the statement's), on
    SQLite in a transaction; either way the failure must undo the whole write."""
    sqlite = horde.db.is_sqlite
    create = (
        [f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
         "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"]
        if sqlite else
        [f"CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS "
         "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
         f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
         f"FOR EACH ROW EXECUTE FUNCTION refuse_{table}()"]
    )  # fmt: skip
    drop = [f"DROP TRIGGER refuse_{table}"] if sqlite else [
        f"DROP TRIGGER refuse_{table} ON {table}", f"DROP FUNCTION refuse_{table}()"
    ]  # fmt: skip
    async with horde.db.engine.begin() as conn:
        for statement in create:
            await conn.execute(text(statement))
    try:
        yield
    finally:
        async with horde.db.engine.begin() as conn:
            for statement in drop:
                await conn.execute(text(statement))


async def test_submit_commit_failure(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    await client.post(f"{V2}/generate/text/async", json={"prompt": "hi"}, headers={"apikey": api_key})
    popped = (
        await client.post(f"{V2}/generate/text/pop", json={"name": "w1 worker"}, headers={"apikey": api_key})
    ).json()
    body = {"id": popped["id"], "generation": "done"}
    async with refusing_inserts(horde, "kudos_postings"):
        failed = await client.post(f"{V2}/generate/text/submit", json=body, headers={"apikey": api_key})
    assert failed.status_code == 500
    retried = await client.post(f"{V2}/generate/text/submit", json=body, headers={"apikey": api_key})
    assert retried.status_code == 200  # nothing was stored by the failed attempt, so the retry is paid once
    assert retried.json()["reward"] > 0


async def test_submit_commit_failure_with_webhook(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    """With a webhook the submit also writes the outbox row: refuse it, and nothing of the submit stays."""
    request = {"prompt": "hi", "webhook": "http://127.0.0.1:9/hook"}  # never called: nothing commits
    await client.post(f"{V2}/generate/text/async", json=request, headers={"apikey": api_key})
    popped = (
        await client.post(f"{V2}/generate/text/pop", json={"name": "w1 worker"}, headers={"apikey": api_key})
    ).json()
    body = {"id": popped["id"], "generation": "done"}
    async with refusing_inserts(horde, "webhook_deliveries"):
        failed = await client.post(f"{V2}/generate/text/submit", json=body, headers={"apikey": api_key})
    assert failed.status_code == 500
    retried = await client.post(f"{V2}/generate/text/submit", json=body, headers={"apikey": api_key})
    assert retried.status_code == 200
    assert retried.json()["reward"] > 0
