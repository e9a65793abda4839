"""The node that stores a request remembers it as the database would give it back (pop reads it)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from horde.server.state import Horde
from tests.helpers import V2, png_b64

REQUESTS = [
    ("generate/text/async", {"prompt": "a tale", "models": ["model-a", "model-b"],
                             "params": {"max_length": 80, "temperature": 0.5}}),
    ("generate/async", {"prompt": "a cat", "params": {"width": 512, "height": 768, "n": 2, "seed": "7"},
                        "nsfw": True, "slow_workers": False, "r2": False}),
    ("interrogate/async", {"forms": [{"name": "caption"}, {"name": "nsfw"}], "source_image": png_b64()}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), REQUESTS, ids=["text", "image", "alchemy"])
async def test_remembered_request_equals_the_stored_one(
    client: httpx.AsyncClient, api_key: str, horde: Horde, path: str, body: dict[str, Any]
) -> None:
    accepted = await client.post(f"{V2}/{path}", json=body, headers={"apikey": api_key})
    assert accepted.status_code == 202, accepted.text
    request_id = uuid.UUID(accepted.json()["id"])
    remembered = horde.requests.cached(request_id)
    async with horde.db.autocommit() as conn:
        stored = await horde.statements.load_request(conn, request_id)
    assert stored is not None
    assert remembered == stored
