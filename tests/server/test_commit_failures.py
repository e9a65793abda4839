"""A failed commit never reaches the client as success (STYLE.md: the request commits before answering)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

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


async def _worker(client: httpx.AsyncClient, key: str, name: str) -> str:
    await client.post(f"{V2}/generate/text/pop", json={"name": name}, headers={"apikey": key})
    found = (await client.get(f"{V2}/workers/name/{name}")).json()
    worker_id: str = found["id"]
    return worker_id


async def test_cold_endpoints_commit_before_answering(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    """The request's unit commits before the response is sent: a commit that fails is the client's
    500 with an rc, never a 2xx (a `yield` dependency without scope="function" would exit after the
    response, and the client would see 200 for a change that was then rolled back)."""
    me = (await client.get(f"{V2}/find_user", headers={"apikey": api_key})).json()
    worker_id = await _worker(client, api_key, "commit probe")
    headers = {"apikey": api_key}
    calls = [
        ("PUT", f"{V2}/users/{me['id']}", {"contact": "new@example.org"}),
        ("PUT", f"{V2}/workers/{worker_id}", {"info": "changed"}),
        ("DELETE", f"{V2}/workers/{worker_id}", None),
        ("POST", f"{V2}/dev/test-user", {"username": "late", "oauth_id": "late"}),
    ]
    with failing_commits(horde):
        for method, url, body in calls:
            response = await client.request(method, url, json=body, headers=headers)
            assert response.status_code == 500, (method, url, response.text)
            assert response.json() == {"message": "Internal Server Error", "rc": "InternalServerError"}
        register = await client.post("/register", data={"username": "late"})
        assert register.status_code == 500
    # nothing of it was stored, and the caches were not told of changes that never happened
    after = (await client.get(f"{V2}/users/{me['id']}", headers=headers)).json()
    assert after.get("contact") != "new@example.org"
    worker = (await client.get(f"{V2}/workers/{worker_id}", headers=headers)).json()
    assert worker.get("info") != "changed"
    users = (await client.get(f"{V2}/users")).json()
    assert "late" not in {u["username"].split("#")[0] for u in users}
