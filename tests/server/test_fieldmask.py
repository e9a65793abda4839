"""`X-Fields` masks: the parser and trimming (unit), and the middleware over the real app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from horde.server.kit import fieldmask
from horde.server.state import Horde
from tests.helpers import row_counts

V2 = "/api/v2"
USER = {"id": 5, "username": "a#5", "kudos": 10.0, "kudos_details": {"accumulated": 3.0, "gifted": 1.0},
        "workers": ["w1"], "contact": None}  # fmt: skip


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ("{id,kudos}", {"id": 5, "kudos": 10.0}),
        ("id,kudos", {"id": 5, "kudos": 10.0}),  # the outer braces are optional
        ("{id,kudos_details{accumulated}}", {"id": 5, "kudos_details": {"accumulated": 3.0}}),
        ("{kudos_details}", {"kudos_details": {"accumulated": 3.0, "gifted": 1.0}}),
        ("{id,nothing}", {"id": 5}),  # a field the answer lacks is left out
        ("{contact{x}}", {"contact": None}),  # a nested mask on null keeps the null
        ("{}", {}),
        ("{kudos_details{gifted},*}", {**USER, "kudos_details": {"gifted": 1.0}}),
    ],
)
def test_masks(mask: str, expected: dict[str, Any]) -> None:
    assert fieldmask.apply(fieldmask.parse(mask), USER) == expected


def test_a_list_is_masked_item_by_item() -> None:
    mask = fieldmask.parse("{name,models{name}}")
    data = [{"name": "a", "count": 1, "models": [{"name": "m", "x": 1}]}, {"name": "b", "count": 2}]
    assert fieldmask.apply(mask, data) == [{"name": "a", "models": [{"name": "m"}]}, {"name": "b"}]


@pytest.mark.parametrize(
    ("mask", "reason"),
    [
        ("{id", "Missing closing bracket"),
        ("{id{kudos}", "Missing closing bracket"),
        ("{id}}", "Unexpected closing bracket"),
        ("{{id}", "Unexpected opening bracket"),
        ("{,id}", "Unexpected comma"),
        ("{id,,kudos}", "Unexpected comma"),
    ],
)
def test_malformed_masks(mask: str, reason: str) -> None:
    with pytest.raises(fieldmask.MaskParseError, match=reason):
        fieldmask.parse(mask)


def test_a_nested_mask_on_a_plain_value_is_inconsistent() -> None:
    with pytest.raises(fieldmask.MaskError, match="inconsistent"):
        fieldmask.apply(fieldmask.parse("{id{x}}"), USER)


async def test_masks_over_http(client: httpx.AsyncClient, api_key: str) -> None:
    user = (await client.get(f"{V2}/find_user", headers={"apikey": api_key})).json()
    masked = await client.get(
        f"{V2}/find_user", headers={"apikey": api_key, "X-Fields": "{id,kudos_details{accumulated}}"}
    )
    assert masked.status_code == 200
    assert masked.json() == {
        "id": user["id"],
        "kudos_details": {"accumulated": user["kudos_details"]["accumulated"]},
    }
    assert int(masked.headers["content-length"]) == len(masked.content)
    news = await client.get(f"{V2}/status/news", headers={"X-Fields": "title"})
    assert news.json() and all(list(item) == ["title"] for item in news.json())
    # a 202 is masked too; its request is made once
    made = await client.post(
        f"{V2}/generate/async", json={"prompt": "a cat"}, headers={"apikey": api_key, "X-Fields": "{id}"}
    )
    assert made.status_code == 202 and list(made.json()) == ["id"]


async def test_errors_and_unmarshalled_answers_are_not_masked(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"{V2}/generate/status/{'0' * 36}", headers={"X-Fields": "{id}"})
    assert missing.status_code == 404 and missing.json()["rc"]
    heartbeat = await client.get(f"{V2}/status/heartbeat", headers={"X-Fields": "{version}"})
    assert "message" in heartbeat.json()  # the reference does not marshal the heartbeat
    empty = await client.get(f"{V2}/status/performance", headers={"X-Fields": " "})
    assert "worker_count" in empty.json() and len(empty.json()) > 1


async def test_a_malformed_mask_is_refused_before_anything_is_written(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    response = await client.post(
        f"{V2}/generate/async", json={"prompt": "a cat"}, headers={"apikey": api_key, "X-Fields": "{id"}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Mask parse error: Missing closing bracket"}
    assert await row_counts(horde) == (0, 0)
    inconsistent = await client.get(f"{V2}/find_user", headers={"apikey": api_key, "X-Fields": "{id{x}}"})
    assert inconsistent.status_code == 400
    assert inconsistent.json() == {"message": "Mask error: Mask is inconsistent with model"}
