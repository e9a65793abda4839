"""`/stats/img/*` and `/stats/text/*`, on SQLite and PostgreSQL (SEMANTICS.md 1.8, ADR 0021): a
completion only inserts an event; the fold puts it in minute, hour and day buckets and the totals; a
test clock shows each window roll over."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from horde.server.kit.clock import FakeClock
from horde.server.kit.orm import table
from horde.server.state import Horde
from horde.server.stats.models import StatBucket, StatEvent
from horde.server.stats.scheduled import fold_stat_events
from tests.contract.swagger import check_body, requires_swagger
from tests.helpers import V2, webp_b64

pytestmark = requires_swagger
REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"
PIXELSTEPS = 512 * 512 * 10
HOUR, DAY = 3600, 86400


async def _image(client: httpx.AsyncClient, key: str) -> None:
    request = {"prompt": "a statistic", "params": {"n": 1, "steps": 10}, "models": ["stable_diffusion"]}
    assert (
        await client.post(f"{V2}/generate/async", json=request, headers={"apikey": key})
    ).status_code == 202
    worker = {"name": "stats image worker", "models": ["stable_diffusion"], "bridge_agent": REGEN}
    popped = (await client.post(f"{V2}/generate/pop", json=worker, headers={"apikey": key})).json()
    result = {"id": popped["id"], "generation": webp_b64(), "state": "ok", "seed": 1}
    assert (
        await client.post(f"{V2}/generate/submit", json=result, headers={"apikey": key})
    ).status_code == 200


async def _texts(client: httpx.AsyncClient, key: str) -> None:
    request = {"prompt": "Once upon a time", "params": {"max_length": 32, "n": 2}}
    assert (
        await client.post(f"{V2}/generate/text/async", json=request, headers={"apikey": key})
    ).status_code == 202
    worker = {"name": "stats text worker", "models": ["test-model"], "amount": 2}
    popped = (await client.post(f"{V2}/generate/text/pop", json=worker, headers={"apikey": key})).json()
    for job_id in popped["ids"]:
        done = {"id": job_id, "generation": "and they lived happily"}
        assert (
            await client.post(f"{V2}/generate/text/submit", json=done, headers={"apikey": key})
        ).status_code == 200


async def _get(client: httpx.AsyncClient, path: str, definition: str) -> dict[str, Any]:
    response = await client.get(f"{V2}{path}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert check_body(definition, body) == []
    return body


async def _images(client: httpx.AsyncClient) -> dict[str, int]:
    body = await _get(client, "/stats/img/totals", "StatsImgTotals")
    assert all(body[p]["ps"] == body[p]["images"] * PIXELSTEPS for p in body)
    return {period: figures["images"] for period, figures in body.items()}


async def _count(horde: Horde, model: Any) -> int:
    async with horde.db.autocommit() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table(model))) or 0)


async def test_windows_roll_over(
    client: httpx.AsyncClient, horde: Horde, clock: FakeClock, api_key: str
) -> None:
    await _image(client, api_key)
    await _texts(client, api_key)
    assert await _count(horde, StatEvent) == 3  # the completions only inserted events
    zero = {"minute": 0, "hour": 0, "day": 0, "month": 0, "total": 0}
    assert await _images(client) == zero
    assert await fold_stat_events(horde) == 3
    assert await _count(horde, StatEvent) == 0
    clock.advance(11)  # past this node's cache of the answer
    assert await _images(client) == {"minute": 1, "hour": 1, "day": 1, "month": 1, "total": 1}
    text = await _get(client, "/stats/text/totals", "StatsTxtTotals")
    assert {p: f["requests"] for p, f in text.items()} == {
        "minute": 2,
        "hour": 2,
        "day": 2,
        "month": 2,
        "total": 2,
    }
    assert text["total"]["tokens"] > 0
    models = await _get(client, "/stats/img/models?model_state=all", "ImgModelStats")
    assert models == {
        "day": {"stable_diffusion": 1},
        "month": {"stable_diffusion": 1},
        "total": {"stable_diffusion": 1},
    }
    known = await _get(client, "/stats/img/models", "ImgModelStats")
    custom = await _get(client, "/stats/img/models?model_state=custom", "ImgModelStats")
    assert {**known["total"], **custom["total"]} == models["total"] and not known["total"].keys() & custom[
        "total"
    ]
    texts = await _get(client, "/stats/text/models", "TxtModelStats")
    assert texts["day"] == {"test-model": 2} and texts["total"] == {"test-model": 2}
    bad = await client.get(f"{V2}/stats/img/models?model_state=some")
    assert bad.status_code == 400 and bad.json()["rc"] == "BadRequest", bad.text
    clock.advance(121)
    assert await _images(client) == {"minute": 0, "hour": 1, "day": 1, "month": 1, "total": 1}
    clock.advance(2 * HOUR)
    assert await _images(client) == {"minute": 0, "hour": 0, "day": 1, "month": 1, "total": 1}
    clock.advance(2 * DAY)
    assert await _images(client) == {"minute": 0, "hour": 0, "day": 0, "month": 1, "total": 1}
    day_models = await _get(client, "/stats/img/models?model_state=all", "ImgModelStats")
    assert day_models["day"] == {} and day_models["month"] == {"stable_diffusion": 1}
    clock.advance(40 * DAY)
    assert await _images(client) == {"minute": 0, "hour": 0, "day": 0, "month": 0, "total": 1}
    assert await _count(horde, StatBucket) > 0
    assert await fold_stat_events(horde) == 0  # nothing to fold, but the buckets no window reaches go
    assert await _count(horde, StatBucket) == 0
    assert await _images(client) == {"minute": 0, "hour": 0, "day": 0, "month": 0, "total": 1}
