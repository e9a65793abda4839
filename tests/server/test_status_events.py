"""Pushed status (an extension): `GET .../status/{id}/events` streams a request's progress as SSE."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx

from tests.helpers import V2

TEXT = {"prompt": "Once upon a time", "params": {"max_length": 32, "n": 2}, "models": ["test-model"]}


def _events(body: str) -> list[tuple[str, Any]]:
    """(event, data) of each SSE event in `body`; keep-alive comments are dropped."""
    found = []
    for block in body.strip().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if not lines:
            continue
        name = next(line.removeprefix("event: ") for line in lines if line.startswith("event: "))
        data = next(line.removeprefix("data: ") for line in lines if line.startswith("data: "))
        found.append((name, json.loads(data)))
    return found


async def _pop_and_submit(client: httpx.AsyncClient, key: str, text: str) -> None:
    body = {"name": "events worker", "models": ["test-model"]}
    popped = (await client.post(f"{V2}/generate/text/pop", json=body, headers={"apikey": key})).json()
    assert popped["id"], popped
    answer = {"id": popped["id"], "generation": text}
    submitted = await client.post(f"{V2}/generate/text/submit", json=answer, headers={"apikey": key})
    assert submitted.status_code == 200, submitted.text


async def test_a_text_request_streams_its_progress_until_done(
    client: httpx.AsyncClient, api_key: str
) -> None:
    accepted = await client.post(f"{V2}/generate/text/async", json=TEXT, headers={"apikey": api_key})
    request_id = accepted.json()["id"]
    stream = asyncio.create_task(client.get(f"{V2}/generate/text/status/{request_id}/events"))
    await asyncio.sleep(0.2)  # the stream has sent its first status and waits
    await _pop_and_submit(client, api_key, "first")
    await asyncio.sleep(0.2)
    await _pop_and_submit(client, api_key, "second")
    response = await asyncio.wait_for(stream, 30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "status" and names[-1] == "done", names
    assert events[0][1]["waiting"] == 2 and events[0][1]["done"] is False
    generations = [data["text"] for name, data in events if name == "generation"]
    assert generations == ["first", "second"]  # each once, in the order they finished
    assert names.index("generation") < len(names) - 1
    final = events[-1][1]
    assert final["done"] is True and final["finished"] == 2
    assert sorted(g["text"] for g in final["generations"]) == ["first", "second"]
    statuses = [data for name, data in events if name == "status"]
    assert statuses[-1]["finished"] == 2 and all("generations" not in s for s in statuses)
    assert len({json.dumps(s, sort_keys=True) for s in statuses}) == len(statuses)  # only changes


async def test_a_finished_request_answers_at_once(client: httpx.AsyncClient, api_key: str) -> None:
    body = {**TEXT, "params": {"max_length": 32, "n": 1}}
    request_id = (
        await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    ).json()["id"]
    await _pop_and_submit(client, api_key, "only")
    response = await asyncio.wait_for(client.get(f"{V2}/generate/text/status/{request_id}/events"), 10)
    assert [name for name, _ in _events(response.text)] == ["status", "generation", "done"]


async def test_a_cancelled_request_ends_its_stream(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = (
        await client.post(f"{V2}/generate/text/async", json=TEXT, headers={"apikey": api_key})
    ).json()["id"]
    stream = asyncio.create_task(client.get(f"{V2}/generate/text/status/{request_id}/events"))
    await asyncio.sleep(0.2)
    await client.delete(f"{V2}/generate/text/status/{request_id}")
    events = _events((await asyncio.wait_for(stream, 30)).text)
    assert events[-1][0] == "done" and events[-1][1]["done"] is True


async def test_unknown_requests_are_404_for_every_kind(client: httpx.AsyncClient) -> None:
    for path in ("generate/status", "generate/text/status", "interrogate/status"):
        for raw in (str(uuid.uuid4()), "not-a-uuid"):
            answer = await client.get(f"{V2}/{path}/{raw}/events")
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["rc"] == "RequestNotFound"
