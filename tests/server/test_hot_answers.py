"""Pops and status polls answer pre-built JSON (ADR 0011: validating them through pydantic costs more
than the rest of an empty pop's own work); these bodies must still be what the served OpenAPI says.

Each body is parsed into the route's response model: a status equals the model's full dump, a pop the
model's dump of the fields it sets (the contract's defaults are left for the client to fill, as the
reference leaves them). A field the model does not know, or a value it refuses, fails here.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from horde.contract import (
    GenerationPayloadKobold,
    GenerationPayloadStable,
    InterrogationPopPayload,
    InterrogationStatus,
    RequestStatusCheck,
    RequestStatusKobold,
    RequestStatusStable,
)
from tests.helpers import V2, png_b64

KINDS: dict[str, dict[str, Any]] = {
    "text": {
        "async": "generate/text/async", "pop": "generate/text/pop", "submit": "generate/text/submit",
        "status": ["generate/text/status"], "request": {"prompt": "hello", "params": {"n": 2}},
        "worker": {"name": "hot text worker"}, "result": {"generation": "world"},
        "pop_model": GenerationPayloadKobold, "status_models": [RequestStatusKobold],
    },
    "image": {
        "async": "generate/async", "pop": "generate/pop", "submit": "generate/submit",
        "status": ["generate/status", "generate/check"], "request": {"prompt": "a cat", "r2": False},
        "worker": {"name": "hot image worker"}, "result": {"generation": png_b64(), "seed": 3},
        "pop_model": GenerationPayloadStable, "status_models": [RequestStatusStable, RequestStatusCheck],
    },
    "alchemy": {
        "async": "interrogate/async", "pop": "interrogate/pop", "submit": "interrogate/submit",
        "status": ["interrogate/status"],
        "request": {"forms": [{"name": "caption"}], "source_image": png_b64()},
        "worker": {"name": "hot alchemy worker", "forms": ["caption"]},
        "result": {"result": {"caption": "a"}},
        "pop_model": InterrogationPopPayload, "status_models": [InterrogationStatus],
    },
}  # fmt: skip


def _sent_as_documented(model: type[BaseModel], body: dict[str, Any], *, only_set: bool) -> None:
    parsed = model.model_validate(body)
    assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=only_set) == body


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_pop_and_status_bodies_are_their_response_models(
    client: httpx.AsyncClient, api_key: str, kind: str
) -> None:
    k, auth = KINDS[kind], {"apikey": api_key}
    empty = await client.post(f"{V2}/{k['pop']}", json=k["worker"], headers=auth)
    assert empty.status_code == 200, empty.text
    _sent_as_documented(k["pop_model"], empty.json(), only_set=True)
    accepted = await client.post(f"{V2}/{k['async']}", json=k["request"], headers=auth)
    assert accepted.status_code == 202, accepted.text
    request_id = accepted.json()["id"]
    for path, model in zip(k["status"], k["status_models"], strict=True):
        waiting = await client.get(f"{V2}/{path}/{request_id}")
        _sent_as_documented(model, waiting.json(), only_set=False)
    hit = await client.post(f"{V2}/{k['pop']}", json=k["worker"], headers=auth)
    body = hit.json()
    _sent_as_documented(k["pop_model"], body, only_set=True)
    job_id = body["forms"][0]["id"] if kind == "alchemy" else body["id"]
    assert job_id
    submitted = await client.post(f"{V2}/{k['submit']}", json={"id": job_id, **k["result"]}, headers=auth)
    assert submitted.status_code == 200, submitted.text
    for path, model in zip(k["status"], k["status_models"], strict=True):
        done = await client.get(f"{V2}/{path}/{request_id}")
        _sent_as_documented(model, done.json(), only_set=False)
