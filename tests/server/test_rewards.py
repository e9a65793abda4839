"""What a submit pays (issue 10 finding 1): never more than the job charges, a censored job almost
nothing (ADR 0014), an `R2` submit nothing until its object was uploaded; and the self-dealing loop
of the audit (a worker serving its owner's, or anonymous, big requests) closed."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from horde.server.jobs.models import Job
from horde.server.kit.orm import table
from horde.server.kudos import pricing
from horde.server.kudos import service as kudos
from horde.server.kudos.scheduled import fold_postings
from horde.server.state import Horde
from tests.helpers import V2, webp_b64

ANON = {"apikey": "0000000000"}
REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"
jobs = table(Job)


async def _user(client: httpx.AsyncClient, name: str, kudos_: float) -> dict[str, str]:
    body = {"username": name, "oauth_id": f"oauth-{name}", "kudos": kudos_, "moderator": False}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, str] = response.json()
    return user


async def _pop(client: httpx.AsyncClient, key: str, amount: int = 1) -> dict[str, Any]:
    pop = {
        "name": "own worker",
        "models": ["stable_diffusion"],
        "bridge_agent": REGEN,
        "amount": amount,
        "max_pixels": 2048 * 2048,
    }  # fmt: skip (room for a batch of four 1024x1024)
    response = await client.post(f"{V2}/generate/pop", json=pop, headers={"apikey": key})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _upload(client: httpx.AsyncClient, url: str) -> None:
    put = await client.put(url.removeprefix("http://testserver"), content=base64.b64decode(webp_b64()))
    assert put.status_code == 200, put.text


async def _submit(client: httpx.AsyncClient, key: str, job_id: str, **fields: Any) -> httpx.Response:
    body = {"id": job_id, "generation": "R2", "seed": 1, "state": "ok", **fields}
    return await client.post(f"{V2}/generate/submit", json=body, headers={"apikey": key})


async def _balance(horde: Horde, user_id: str) -> int:
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        return await kudos.balance_of(conn, int(user_id))


async def _job(horde: Horde, job_id: str) -> dict[str, Any]:
    async with horde.db.autocommit() as conn:
        row = (await conn.execute(select(jobs).where(jobs.c.id == uuid.UUID(job_id)))).one()
    return dict(row._mapping)


async def test_a_censored_job_pays_no_more_than_it_charges(client: httpx.AsyncClient, horde: Horde) -> None:
    requester = await _user(client, "requester", 5000)
    owner = await _user(client, "owner", 100)
    body = {"prompt": "a harbour", "params": {"width": 1024, "height": 1024, "steps": 40, "n": 1}}
    accepted = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": requester["api_key"]})
    assert accepted.status_code == 202, accepted.text
    job = await _pop(client, owner["api_key"])
    await _upload(client, job["r2_upload"])
    before = await _balance(horde, owner["user_id"]), await _balance(horde, requester["user_id"])
    submitted = await _submit(client, owner["api_key"], job["id"], state="censored")
    assert submitted.status_code == 200, submitted.text
    earned = await _balance(horde, owner["user_id"]) - before[0]
    charged = before[1] - await _balance(horde, requester["user_id"])
    assert 0 < earned <= charged <= pricing.hundredths(1.2)  # the reference would pay about 40 kudos
    assert pricing.hundredths(submitted.json()["reward"]) == earned
    stored = await _job(horde, job["id"])
    assert stored["reward"] <= stored["cost"]


async def test_an_r2_submit_without_its_upload_is_refused_and_unpaid(
    client: httpx.AsyncClient, horde: Horde
) -> None:
    requester = await _user(client, "requester", 5000)
    owner = await _user(client, "owner", 100)
    body = {"prompt": "a harbour", "params": {"width": 512, "height": 512, "steps": 20, "n": 1}}
    assert (
        await client.post(f"{V2}/generate/async", json=body, headers={"apikey": requester["api_key"]})
    ).status_code == 202
    job = await _pop(client, owner["api_key"])
    before = await _balance(horde, owner["user_id"])
    refused = await _submit(client, owner["api_key"], job["id"])
    assert (refused.status_code, refused.json()["rc"]) == (400, "ImageValidationFailed")
    assert await _balance(horde, owner["user_id"]) == before
    assert (await _job(horde, job["id"]))["state"] == "processing"
    await _upload(client, job["r2_upload"])  # the worker may still upload and submit
    assert (await _submit(client, owner["api_key"], job["id"])).status_code == 200
    assert await _balance(horde, owner["user_id"]) > before


async def test_the_self_dealing_loop_is_closed(client: httpx.AsyncClient, horde: Horde) -> None:
    """The audit's loop: a worker serving its owner's or anonymous huge requests, censored or never
    uploaded, minted kudos without limit. Above the free size nothing is queued; within it no job
    pays more than it charges, a censored one no more than it charged, an unuploaded one nothing."""
    owner = await _user(client, "owner", 100)
    huge = {"prompt": "x", "params": {"width": 3072, "height": 3072, "steps": 500, "n": 20}, "r2": True}
    for key in (ANON, {"apikey": owner["api_key"]}):
        refused = await client.post(f"{V2}/generate/async", json=huge, headers=key)
        assert (refused.status_code, refused.json()["rc"]) == (403, "KudosUpfront")
    within = {"prompt": "x", "params": {"width": 1024, "height": 1024, "steps": 40, "n": 4}, "r2": True}
    assert (await client.post(f"{V2}/generate/async", json=within, headers=ANON)).status_code == 202
    popped = await _pop(client, owner["api_key"], amount=4)
    ids, uploads = popped["ids"], popped["r2_uploads"]
    assert len(ids) == 4
    start = await _balance(horde, owner["user_id"])
    for url in uploads[:3]:
        await _upload(client, url)
    rewards = [
        await _submit(client, owner["api_key"], ids[0]),
        await _submit(client, owner["api_key"], ids[1], state="censored"),
        await _submit(
            client, owner["api_key"], ids[2], gen_metadata=[{"type": "censorship", "value": "nsfw"}]
        ),
        await _submit(client, owner["api_key"], ids[3]),  # never uploaded
    ]
    assert [r.status_code for r in rewards] == [200, 200, 200, 400]
    settled = [await _job(horde, job_id) for job_id in ids]
    for job in settled[:3]:
        assert 0 < job["reward"] <= job["cost"]
    for job in settled[1:3]:
        assert job["reward"] <= pricing.hundredths(1.0)
    assert settled[3]["reward"] == 0
    earned = await _balance(horde, owner["user_id"]) - start
    assert earned == sum(job["reward"] for job in settled)
    assert earned <= sum(job["cost"] for job in settled)
    async with horde.db.autocommit() as conn:
        assert await kudos.verify(conn) == []
