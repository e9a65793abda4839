"""Server-side waits: an idle worker's pop or a client's status poll parks until something happens.

An extension of the reference API: a client opts in with the request header `Horde-Wait: <seconds>`
and learns the horde supports it from the response header `Horde-Wait-Supported: 1`. A parked request
holds no database connection; it re-checks when woken, and at least every `RECHECK` seconds in case
a wake-up was lost (another node without a relay, say).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from horde.server.jobs.claims import pop_jobs
from horde.server.jobs.status import parse_request_id, request_status
from horde.server.state import Horde
from horde.server.users.principal import Principal

WAIT_HEADER = "horde-wait"
SUPPORTED_HEADER = "Horde-Wait-Supported"
RECHECK = 2.0


def wait_seconds(horde: Horde, raw: str | None) -> float:
    """The wait a client asked for, within the horde's limit; 0 when absent or malformed."""
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        return 0.0
    return max(0.0, min(value, horde.settings.max_wait)) if value == value else 0.0


def _is_empty(body: dict[str, Any]) -> bool:
    return body.get("id") is None and not body.get("forms")


Disconnected = Callable[[], Awaitable[bool]]


async def _never() -> bool:
    return False


async def pop_waiting(
    horde: Horde,
    *,
    kind: str,
    body: Any,
    user: Principal,
    ipaddr: str,
    wait: float,
    disconnected: Disconnected = _never,
) -> dict[str, Any]:
    """Pop; when nothing matches, park until new work of this kind arrives or the wait ends."""
    deadline = time.monotonic() + wait
    notifier = horde.notifier
    while True:
        watched = notifier.watch_work(kind)  # before the pop: work added after it still wakes us
        result = await pop_jobs(horde, kind=kind, body=body, user=user, ipaddr=ipaddr)
        remaining = deadline - time.monotonic()
        if not _is_empty(result) or remaining <= 0 or notifier.closing or await disconnected():
            return result
        await notifier.wait(watched, min(remaining, RECHECK))


def _finished(status: dict[str, Any]) -> bool:
    return bool(status.get("done")) or status.get("state") in ("done", "faulted", "cancelled", "partial")


async def status_waiting(
    horde: Horde,
    *,
    kind: str,
    raw_id: str,
    full: bool,
    wait: float,
    disconnected: Disconnected = _never,
) -> dict[str, Any]:
    """A status that, when asked to wait, answers as soon as the request changes or finishes."""
    request_id: uuid.UUID = parse_request_id(raw_id)
    deadline = time.monotonic() + wait
    notifier = horde.notifier
    watched = notifier.watch_request(request_id)
    status = await request_status(horde, kind=kind, request_id=request_id, full=full)
    while not _finished(status) and (remaining := deadline - time.monotonic()) > 0:
        if notifier.closing or await disconnected():
            break
        woken = await notifier.wait(watched, min(remaining, RECHECK))
        watched = notifier.watch_request(request_id)
        latest = await request_status(horde, kind=kind, request_id=request_id, full=full)
        if woken or latest != status:
            return latest
        status = latest
    return status
