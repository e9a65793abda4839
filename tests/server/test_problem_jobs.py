"""CSAM outcomes (SEMANTICS.md 3.4): a job a worker reports as CSAM ends in state `csam`, its result is
neither stored nor served, the requester pays nothing for it, and moderators find a problem-job record."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from horde.cli.main import main
from horde.server.kudos import service as kudos
from horde.server.state import Horde
from tests.helpers import V2, webp_b64

REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


async def _requester(client: httpx.AsyncClient) -> dict[str, Any]:
    body = {
        "username": "asker",
        "oauth_id": "oauth-asker",
        "moderator": False,
        "trusted": False,
        "kudos": 500,
    }
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def _balance(horde: Horde, user_id: str) -> int:
    async with horde.db.autocommit() as conn:
        return await kudos.balance_of(conn, int(user_id))


async def _image_job(client: httpx.AsyncClient, asker: str, worker_key: str) -> tuple[str, dict[str, Any]]:
    body = {"prompt": "a lighthouse", "params": {"steps": 10}, "models": ["stable_diffusion"]}
    response = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": asker})
    assert response.status_code == 202, response.text
    pop = {"name": "csam image worker", "models": ["stable_diffusion"], "bridge_agent": REGEN}
    popped = await client.post(f"{V2}/generate/pop", json=pop, headers={"apikey": worker_key})
    assert popped.status_code == 200 and popped.json()["id"], popped.text
    return str(response.json()["id"]), popped.json()


@pytest.mark.parametrize(
    "report",
    [
        {"state": "ok", "gen_metadata": [{"type": "censorship", "value": "csam"}]},
        {"state": "csam"},
    ],
)
async def test_an_image_reported_as_csam(
    client: httpx.AsyncClient, horde: Horde, api_key: str, report: dict[str, Any]
) -> None:
    asker = await _requester(client)
    before = await _balance(horde, asker["user_id"])
    request_id, popped = await _image_job(client, asker["api_key"], api_key)
    upload = popped["r2_upload"].removeprefix("http://testserver")
    assert (await client.put(upload, content=b"RIFF....WEBPVP8 ")).status_code in (200, 400)
    body = {"id": popped["id"], "generation": "R2", "seed": 1, **report}
    submitted = await client.post(f"{V2}/generate/submit", json=body, headers={"apikey": api_key})
    assert submitted.status_code == 200, submitted.text
    status = (await client.get(f"{V2}/generate/status/{request_id}")).json()
    (generation,) = status["generations"]
    assert generation["state"] == "csam" and generation["censored"] is True and generation["img"] == ""
    assert await horde.storage.get(f"{popped['id']}.webp") is None  # nothing kept of the upload
    # the requester pays nothing for the job: only the activation tax of queueing it (ADR 0023)
    assert await _balance(horde, asker["user_id"]) == before - 100
    problems = await client.get(f"{V2}/problem_jobs", headers={"apikey": api_key})
    assert problems.status_code == 200, problems.text
    (problem,) = problems.json()
    assert problem["id"] == popped["id"] and problem["request_id"] == request_id
    assert problem["kind"] == "image" and problem["user_id"] == int(asker["user_id"])
    assert problem["prompt"] == "a lighthouse" and problem["ipaddr"] == "127.0.0.1"
    refused = await client.get(f"{V2}/problem_jobs", headers={"apikey": asker["api_key"]})
    assert refused.status_code == 403 and refused.json()["rc"] == "NotModerator"


@pytest.mark.parametrize(
    "report",
    [{"state": "csam"}, {"state": "ok", "gen_metadata": [{"type": "censorship", "value": "csam"}]}],
)
async def test_a_text_reported_as_csam(
    client: httpx.AsyncClient, horde: Horde, api_key: str, report: dict[str, Any]
) -> None:
    asker = await _requester(client)
    before = await _balance(horde, asker["user_id"])
    body = {"prompt": "Once upon a time", "params": {"max_length": 32}}
    response = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": asker["api_key"]})
    assert response.status_code == 202, response.text
    pop = {"name": "csam text worker", "models": ["test-model"]}
    popped = (await client.post(f"{V2}/generate/text/pop", json=pop, headers={"apikey": api_key})).json()
    submit = {"id": popped["id"], "generation": "something it must not keep", **report}
    submitted = await client.post(f"{V2}/generate/text/submit", json=submit, headers={"apikey": api_key})
    assert submitted.status_code == 200, submitted.text
    status = (await client.get(f"{V2}/generate/text/status/{response.json()['id']}")).json()
    (generation,) = status["generations"]
    assert generation["state"] == "csam" and generation["text"] == ""
    assert await _balance(horde, asker["user_id"]) == before - 100  # the activation tax only
    (problem,) = (await client.get(f"{V2}/problem_jobs", headers={"apikey": api_key})).json()
    assert problem["kind"] == "text" and problem["id"] == popped["id"]


async def test_a_censored_image_is_served_but_not_a_problem(
    client: httpx.AsyncClient, horde: Horde, api_key: str
) -> None:
    asker = await _requester(client)
    request_id, popped = await _image_job(client, asker["api_key"], api_key)
    body = {"id": popped["id"], "generation": webp_b64(), "seed": 1, "state": "censored",
            "gen_metadata": [{"type": "censorship", "value": "nsfw"}]}  # fmt: skip
    assert (
        await client.post(f"{V2}/generate/submit", json=body, headers={"apikey": api_key})
    ).status_code == 200
    (generation,) = (await client.get(f"{V2}/generate/status/{request_id}")).json()["generations"]
    assert generation["state"] == "censored" and generation["img"]
    assert (await client.get(f"{V2}/problem_jobs", headers={"apikey": api_key})).json() == []


async def test_the_cli_lists_problem_jobs(
    client: httpx.AsyncClient, horde: Horde, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not horde.db.is_sqlite:
        pytest.skip("the CLI opens its own connection: the rolled-back PostgreSQL test data is invisible")
    asker = await _requester(client)
    _, popped = await _image_job(client, asker["api_key"], api_key)
    body = {"id": popped["id"], "generation": "R2", "seed": 1, "state": "csam"}
    assert (
        await client.post(f"{V2}/generate/submit", json=body, headers={"apikey": api_key})
    ).status_code == 200
    monkeypatch.setenv("HORDE_DATABASE_URL", horde.settings.effective_database_url)
    result = await asyncio.to_thread(CliRunner().invoke, main, ["problem-jobs", "--json"])
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(result.output)
    assert listed["id"] == popped["id"] and listed["prompt"] == "a lighthouse"
