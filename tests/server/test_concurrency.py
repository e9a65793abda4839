"""Twenty workers race to pop one queue on their own connections: no job twice, none lost.

The same harness run on a naive claim (read the best job, then update it, without row locks or a
compare-and-set) finds duplicates: that is what shows the harness can fail.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select, update

from horde.contract import GenerationInputKobold, PopInputKobold
from horde.server.jobs import matching, service
from horde.server.jobs.models import Job, JobState
from horde.server.kit.orm import table
from horde.server.state import Horde
from horde.server.users import service as users
from horde.server.users.principal import Principal

pytestmark = [pytest.mark.concurrency, pytest.mark.committed]

WORKERS = 20
MODELS = ["alpha", "beta", "gamma", "delta"]
jobs = table(Job)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"db_pool_size": WORKERS + 5}


async def _owners(horde: Horde) -> list[Principal]:
    owners = []
    for i in range(2):
        async with horde.db.transaction() as conn:
            new = await users.create_user(
                conn, username=f"owner{i}", oauth_id=f"owner-{i}", pepper=horde.pepper, now=horde.clock.now(),
                trusted=True, concurrency=500,
            )  # fmt: skip
        async with horde.db.autocommit() as conn:
            owner = await horde.users.by_key(conn, new.api_key)
        assert owner is not None
        owners.append(owner)
    return owners


async def _queue(horde: Horde, owner: Principal, requests: int) -> int:
    rng = random.Random(7)
    total = 0
    for _ in range(requests):
        n = rng.randint(1, 4)
        models = rng.sample(MODELS, rng.randint(1, 2))
        body = GenerationInputKobold(prompt="race", params={"n": n, "max_length": 32}, models=models)
        await service.submit_request(
            horde, kind="text", body=body, user=owner, client_agent="t", ipaddr="1.2.3.4"
        )
        total += n
    return total


def _pop_body(i: int) -> PopInputKobold:
    models = [MODELS[i % 4], MODELS[(i + 1) % 4]]
    return PopInputKobold(name=f"racer number {i}", models=models, amount=1 + i % 3, max_length=512)


async def _race(horde: Horde, owners: list[Principal], pop: Any) -> list[str]:
    handed: list[str] = []

    async def worker(i: int) -> None:
        owner = owners[i % 2]
        misses = 0
        while misses < 3:
            ids = await pop(i, owner)
            handed.extend(ids)
            misses = 0 if ids else misses + 1
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(i) for i in range(WORKERS)))
    # SKIP LOCKED makes a worker miss rows others hold at that instant, so every racer may have
    # stopped while a few jobs were still queued: a last calm round takes those.
    while True:
        rest = [job for i in range(WORKERS) for job in await pop(i, owners[i % 2])]
        if not rest:
            return handed
        handed.extend(rest)


async def _real_pop(horde: Horde, i: int, owner: Principal) -> list[str]:
    body = await service.pop_jobs(horde, kind="text", body=_pop_body(i), user=owner, ipaddr=f"10.0.0.{i % 2}")
    return list(body["ids"])


async def test_no_job_twice_and_none_lost(horde: Horde) -> None:
    owners = await _owners(horde)
    total = await _queue(horde, owners[0], 60)
    handed = await _race(horde, owners, lambda i, owner: _real_pop(horde, i, owner))
    counts = Counter(handed)
    assert [job for job, n in counts.items() if n > 1] == []
    assert len(counts) == total
    async with horde.db.autocommit() as conn:
        queued = await conn.scalar(
            select(func.count()).select_from(jobs).where(jobs.c.state == JobState.QUEUED)
        )
        leased = await conn.scalar(
            select(func.count()).select_from(jobs).where(jobs.c.state == JobState.PROCESSING)
        )
    assert (queued, leased) == (0, total)


async def _naive_pop(horde: Horde, i: int, owner: Principal) -> list[str]:
    """The bug the claim avoids: read the best job, then take it, with no lock and no state check."""
    body = _pop_body(i)
    worker = await _worker_profile(horde, body, owner)
    candidates = (
        select(jobs.c.id)
        .select_from(
            jobs.join(matching.conditions.requests, matching.conditions.requests.c.id == jobs.c.request_id)
        )
        .where(*matching.match_filters(worker))
        .order_by(jobs.c.priority_key.desc(), jobs.c.id.desc())
        .limit(1)
    )
    async with horde.db.autocommit() as conn:
        job_id = await conn.scalar(candidates, matching.claim_params(worker, now=0.0))
    if job_id is None:
        return []
    await asyncio.sleep(0.001)  # any await between the read and the write opens the race
    async with horde.db.autocommit() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == job_id).values(state=JobState.PROCESSING))
    return [str(job_id)]


async def _worker_profile(horde: Horde, body: PopInputKobold, owner: Principal) -> Any:
    from horde.server.jobs.kinds import KINDS

    record = {
        "id": uuid.uuid5(uuid.NAMESPACE_DNS, body.name), "user_id": owner.id, "models": body.models,
        "config": KINDS["text"].worker_config(body), "bridge_agent": body.bridge_agent, "threads": 1,
        "speed": 5.0, "nsfw": True,
    }  # fmt: skip
    return KINDS["text"].profile(horde, record, owner_trusted=True, amount=1)


async def test_the_harness_catches_a_claim_without_locking(horde: Horde) -> None:
    owners = await _owners(horde)
    await _queue(horde, owners[0], 20)
    handed = await _race(horde, owners, lambda i, owner: _naive_pop(horde, i, owner))
    duplicates = [job for job, n in Counter(handed).items() if n > 1]
    assert duplicates, "a claim without locking or compare-and-set should hand some job out twice"
