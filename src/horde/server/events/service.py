"""Pushed status (an extension): a request's progress as Server-Sent Events instead of polls.

`GET .../status/{id}/events` answers `text/event-stream`: an `status` event with the check-level status
(queue position, waiting, processing, finished, ...) whenever it changes, a `generation` event with each
generation as it finishes, then `done` with the full final status, and the stream ends. A comment line
every `KEEPALIVE` seconds keeps proxies from closing a quiet stream. The waits are the status waits of
`jobs/waiting.py`: woken by results on any node, holding no database connection between changes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from horde.server.jobs.status import parse_request_id, request_status
from horde.server.jobs.waiting import status_waiting
from horde.server.state import Horde

KEEPALIVE = 15.0
CHECK_FIELDS = (
    "finished", "processing", "restarted", "waiting", "done", "faulted", "wait_time", "queue_position",
    "kudos", "is_possible", "state",
)  # fmt: skip


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _check(status: dict[str, Any]) -> dict[str, Any]:
    return {key: status[key] for key in CHECK_FIELDS if key in status}


def _generation_key(generation: dict[str, Any]) -> str:
    # generations carry no job id and their order in a status is not fixed: they are told apart by
    # content, counted (two equal generations are two events)
    return json.dumps(generation, sort_keys=True, separators=(",", ":"))


async def opened(horde: Horde, *, kind: str, raw_id: str) -> dict[str, Any]:
    """The request's current full status; raises RequestNotFound before any event is sent."""
    return await request_status(horde, kind=kind, request_id=parse_request_id(raw_id), full=True)


async def events(
    horde: Horde,
    *,
    kind: str,
    raw_id: str,
    first: dict[str, Any],
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[bytes]:
    """The request's events from `first` (its status when the stream opened) until it is done."""
    status, sent_check = first, None
    sent: Counter[str] = Counter()
    while True:
        check = _check(status)
        if check != sent_check:
            yield _event("status", check)
            sent_check = check
        seen: Counter[str] = Counter()
        for generation in status.get("generations") or []:
            key = _generation_key(generation)
            seen[key] += 1
            if seen[key] > sent[key]:
                sent[key] += 1
                yield _event("generation", generation)
        if status.get("done") or status.get("faulted") or horde.notifier.closing:
            yield _event("done", status)
            return
        if await disconnected():
            return
        latest = await status_waiting(
            horde, kind=kind, raw_id=raw_id, full=True, wait=KEEPALIVE, disconnected=disconnected
        )
        if latest == status:
            yield b": keep-alive\n\n"
        status = latest
