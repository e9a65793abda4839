"""Webhooks: an outbox row written with the result, delivered after commit, 3 tries.

Invariants: a delivery is recorded in the same transaction that finished the request, so a crash
cannot lose it; the request path never waits for a webhook; the sender and the scheduled sweep both
claim due rows with a conditional update, so a delivery is attempted by one sender at a time; each
attempt has an overall deadline and runs beside the others on a client of its own (no shared pool
with source fetches), so one slow receiver delays no other delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.images.sources import pin
from horde.server.kit.orm import table, utc
from horde.server.kit.sql import Params
from horde.server.resources import Resources
from horde.server.webhooks.models import WebhookDelivery

log = logging.getLogger(__name__)
deliveries = table(WebhookDelivery)
CONCURRENT_DELIVERIES = 8


async def enqueue(conn: AsyncConnection, *, url: str, body: dict[str, Any], now: float) -> None:
    """Record the delivery of a finished job (sent after commit; the reference POSTs each job)."""
    at = utc(now)
    await conn.execute(
        insert(deliveries).values(
            url=url, body=body, attempts=0, next_attempt_at=at, created_at=at, failed=False
        )
    )


def outbox_values(*, url: str, body: dict[str, Any], now: float) -> dict[str, object]:
    """The values of `outbox_sql`."""
    return {"hook_url": url, "hook_body": json.dumps(body), "hook_at": utc(now)}


def outbox_sql(p: Params, *, after: str) -> str:
    """PostgreSQL: `enqueue` as a CTE body, recorded only when the CTE `after` returned a row."""
    at = f"{p('hook_at')}::timestamptz"
    return f"""INSERT INTO webhook_deliveries (url, body, attempts, next_attempt_at, created_at, failed)
    SELECT {p("hook_url")}::varchar, {p("hook_body")}::jsonb, 0, {at}, {at}, false FROM {after}
    RETURNING 1"""  # noqa: S608 (names and placeholders only: values are bound)


class WebhookSender:
    """Delivers due webhooks in the background of one process; `kick()` after a commit."""

    def __init__(self, horde: Resources) -> None:
        self.horde = horde
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def kick(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.horde.settings.webhook_retry_delay)
            self._wake.clear()
            try:
                await deliver_due(self.horde)
            except Exception:  # a broken webhook must never stop the sender
                log.exception("webhook delivery round failed")


async def deliver_due(horde: Resources, *, limit: int = 50) -> int:
    """Send every due delivery once; returns how many were sent successfully."""
    now = horde.clock.now()
    async with horde.db.autocommit() as conn:
        due = (
            await conn.execute(
                select(deliveries)
                .where(deliveries.c.delivered_at.is_(None), deliveries.c.failed.is_(False))
                .where(deliveries.c.next_attempt_at <= utc(now))
                .order_by(deliveries.c.id)
                .limit(limit)
            )
        ).all()
    # concurrently, each under its own deadline: a slow receiver holds one slot, not the round
    slots = asyncio.Semaphore(CONCURRENT_DELIVERIES)

    async def attempt(row: dict[str, Any]) -> int:
        async with slots:
            return await _attempt(horde, row)

    return sum(await asyncio.gather(*(attempt(dict(row._mapping)) for row in due)))


async def _attempt(horde: Resources, row: dict[str, Any]) -> int:
    settings = horde.settings
    claimed_until = utc(horde.clock.now() + settings.webhook_timeout + settings.webhook_retry_delay)
    async with horde.db.autocommit() as conn:
        claimed = await conn.execute(
            update(deliveries)
            .where(deliveries.c.id == row["id"], deliveries.c.attempts == row["attempts"])
            .values(attempts=row["attempts"] + 1, next_attempt_at=claimed_until)
        )
    if claimed.rowcount != 1:
        return 0
    error = await _post(horde, row["url"], row["body"])
    values: dict[str, Any] = {"last_error": error}
    if error is None:
        values["delivered_at"] = utc(horde.clock.now())
    elif row["attempts"] + 1 >= settings.webhook_tries:
        values["failed"] = True
    else:
        values["next_attempt_at"] = utc(horde.clock.now() + settings.webhook_retry_delay)
    async with horde.db.autocommit() as conn:
        await conn.execute(update(deliveries).where(deliveries.c.id == row["id"]).values(**values))
    return 1 if error is None else 0


async def _post(horde: Resources, url: str, body: dict[str, Any]) -> str | None:
    """POST once to the address the URL policy checks now (it may resolve elsewhere than at submit)."""
    try:
        target = await pin(url, horde.source_policy, rc=RC.BadRequest)
    except HordeError as exc:
        return exc.message
    deadline = horde.settings.webhook_timeout
    try:
        # the whole exchange has one deadline (httpx's timeouts are per read: a receiver trickling
        # a byte at a time never trips them); the answer's body is never read
        async with asyncio.timeout(deadline):
            request = horde.webhook_http.build_request(
                "POST", target.url, json=body, headers=target.headers, extensions=target.extensions,
                timeout=deadline,
            )  # fmt: skip
            response = await horde.webhook_http.send(request, stream=True, follow_redirects=False)
            await response.aclose()
    except TimeoutError:
        return f"no answer within {deadline:g} s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None if response.is_success else f"HTTP {response.status_code}"
