"""Idempotent creations (issue 10, finding 12; our extension, as the reference has on transfers).

Invariants: one request per (user, `Idempotency-Key`): the first caller claims the key with an insert
(the primary key decides between racing callers, on every node), queues the request and records the
answer; a retry with the same body gets that answer and queues nothing, another body is refused
(IdempotencyKeyConflict); a caller that fails gives the key back. Keys expire (`expires_at`, swept).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from horde.contract import RequestAsync, RequestInterrogationResponse
from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.jobs.kinds.base import Accepted
from horde.server.jobs.models import IdempotencyKey
from horde.server.jobs.requests import submit_request
from horde.server.kit.orm import table
from horde.server.sharedkeys.service import SharedKeyRow
from horde.server.state import Horde
from horde.server.users.principal import Principal

keys = table(IdempotencyKey)
MAX_KEY = 255
WAIT = 30.0  # how long a retry waits for the first caller's answer
POLL = 0.05


def _hash(kind: str, body: Any) -> str:
    return hashlib.sha256(f"{kind}\n{body.model_dump_json()}".encode()).hexdigest()


def _answer_of(kind: str, data: dict[str, Any]) -> Accepted:
    model = RequestInterrogationResponse if kind == "alchemy" else RequestAsync
    return model.model_validate(data)


async def _claim(horde: Horde, *, user_id: int, key: str, digest: str) -> bool:
    now = horde.clock.now()
    values = {"user_id": user_id, "key": key, "body_hash": digest, "answer": None, "created_at": now,
              "expires_at": now + horde.settings.idempotency_key_ttl}  # fmt: skip
    insert = sqlite_insert(keys) if horde.db.is_sqlite else pg_insert(keys)
    async with horde.db.transaction() as conn:
        result = await conn.execute(insert.values(**values).on_conflict_do_nothing())
    return bool(result.rowcount == 1)


async def _first_answer(horde: Horde, *, user_id: int, key: str, digest: str) -> tuple[bool, Any]:
    """(found, answer): found False when the key was given back (or expired) meanwhile."""
    async with horde.db.autocommit() as conn:
        row = (
            await conn.execute(
                select(keys.c.body_hash, keys.c.answer).where(keys.c.user_id == user_id, keys.c.key == key)
            )
        ).first()
    if row is None:
        return False, None
    if row.body_hash != digest:
        raise HordeError(RC.IdempotencyKeyConflict, "This Idempotency-Key was used with another request")
    return True, row.answer


async def submit_once(
    horde: Horde,
    *,
    key: str,
    kind: str,
    body: Any,
    user: Principal,
    client_agent: str,
    ipaddr: str,
    sharedkey: SharedKeyRow | None = None,
) -> Accepted:
    """`submit_request` at most once per (user, key): a retry gets the first answer."""
    if not key or len(key) > MAX_KEY:
        raise HordeError(RC.BadRequest, f"An Idempotency-Key has 1 to {MAX_KEY} characters")
    digest = _hash(kind, body)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await _claim(horde, user_id=user.id, key=key, digest=digest):
        found, answer = await _first_answer(horde, user_id=user.id, key=key, digest=digest)
        if answer is not None:
            return _answer_of(kind, answer)
        if found and loop.time() > deadline:
            raise HordeError(
                RC.IdempotencyKeyConflict, "The first request with this Idempotency-Key is pending"
            )
        if found:
            await asyncio.sleep(POLL)
    where = (keys.c.user_id == user.id, keys.c.key == key)
    try:
        accepted = await submit_request(
            horde,
            kind=kind,
            body=body,
            user=user,
            client_agent=client_agent,
            ipaddr=ipaddr,
            sharedkey=sharedkey,
        )
    except BaseException:
        async with horde.db.transaction() as conn:  # nothing was queued: a retry may try again
            await conn.execute(delete(keys).where(*where))
        raise
    async with horde.db.transaction() as conn:
        await conn.execute(update(keys).where(*where).values(answer=accepted.model_dump(mode="json")))
    return accepted


async def expire_keys(horde: Horde) -> int:
    """Delete keys past their expiry (the scheduler's sweep)."""
    async with horde.db.transaction() as conn:
        result = await conn.execute(delete(keys).where(keys.c.expires_at < horde.clock.now()))
    return int(result.rowcount or 0)
