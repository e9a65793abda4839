"""`/status/models`, `/status/models/{name}`, `/status/performance`, `/status/modes`, `/status/news`,
`/status/heartbeat`, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from horde.server.catalog import load_catalog
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests.contract.swagger import check_body, requires_swagger

V2 = "/api/v2"
REGEN = "AI Horde Worker reGen:9.0.0:https://github.com/Haidra-Org/horde-worker-reGen"
KOBOLD_MODEL = "koboldcpp/Marx-3B-V3"  # in the text model reference, with a slash in its name
NEWS = [
    {"date_published": "2026-01-02", "newspiece": "Second", "importance": "Information", "tags": ["a"],
     "title": "Two", "more_info_urls": ["https://example.com"]},
    {"date_published": "2026-01-01", "newspiece": "First", "importance": "Crisis"},
    {"newspiece": "no date: skipped"},
]  # fmt: skip

pytestmark = requires_swagger


@pytest.fixture
def settings_overrides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("news") / "news.json"
    path.write_text(json.dumps(NEWS))
    return {"news_file": str(path)}


async def _post(client: httpx.AsyncClient, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"{V2}/{path}", json=body, headers={"apikey": key})
    assert response.status_code in (200, 202), response.text
    result: dict[str, Any] = response.json()
    return result


async def _image_request(client: httpx.AsyncClient, key: str, model: str, n: int) -> None:
    body = {
        "prompt": "a lighthouse",
        "params": {"width": 512, "height": 512, "steps": 30, "n": n},
        "models": [model],
    }
    await _post(client, "generate/async", key, body)


async def _text_request(client: httpx.AsyncClient, key: str, model: str) -> None:
    body = {"prompt": "Once upon a time", "params": {"max_length": 32}, "models": [model]}
    await _post(client, "generate/text/async", key, body)


async def _models(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"{V2}/status/models", params=params)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    assert check_body("ActiveModel[]", body) == []
    return body


def _error(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["rc"] == rc and response.json()["message"]


async def _serve_image(client: httpx.AsyncClient, key: str) -> None:
    pop = {"name": "Image Worker One", "models": ["stable_diffusion"], "bridge_agent": REGEN, "threads": 2}
    assert (await _post(client, "generate/pop", key, pop))["id"] is None


async def test_image_models(client: httpx.AsyncClient, api_key: str, clock: FakeClock) -> None:
    await _serve_image(client, api_key)
    await _image_request(client, api_key, "stable_diffusion", n=2)
    await _image_request(client, api_key, "Yiffy", n=1)
    clock.advance(3)  # past the queue snapshot's and the answer's lifetimes
    models = {m["name"]: m for m in await _models(client)}
    served, unserved = models["stable_diffusion"], models["Yiffy"]
    assert (served["count"], served["jobs"], served["type"]) == (2, 2, "image")
    assert served["queued"] == pytest.approx(2 * 512 * 512 * 30 / 1e6, abs=0.01)
    assert served["performance"] == 1.0 and served["eta"] == int(served["queued"] / 2)
    assert (unserved["count"], unserved["jobs"], unserved["eta"]) == (0, 1, 10000)
    assert [m["name"] for m in await _models(client, min_count=1)] == ["stable_diffusion"]
    assert [m["name"] for m in await _models(client, max_count=0)] == ["Yiffy"]
    assert await _models(client, model_state="custom") == []
    _error(await client.get(f"{V2}/status/models", params={"type": "interrogation"}), 400, "BadRequest")
    _error(await client.get(f"{V2}/status/models", params={"model_state": "some"}), 400, "BadRequest")


async def test_text_models_and_one_model(client: httpx.AsyncClient, api_key: str, clock: FakeClock) -> None:
    await _serve_image(client, api_key)
    pop = {"name": "Text Worker One", "models": [KOBOLD_MODEL, "my-own-model"], "threads": 3}
    assert (await _post(client, "generate/text/pop", api_key, pop))["id"] is None
    await _text_request(client, api_key, KOBOLD_MODEL)
    clock.advance(3)
    text = {m["name"]: m for m in await _models(client, type="text")}
    assert set(text) == {KOBOLD_MODEL, "my-own-model"} and text[KOBOLD_MODEL]["type"] == "text"
    assert (text[KOBOLD_MODEL]["count"], text[KOBOLD_MODEL]["jobs"], text[KOBOLD_MODEL]["queued"]) == (
        3,
        1,
        32,
    )
    assert [m["name"] for m in await _models(client, type="text", model_state="custom")] == ["my-own-model"]
    assert [m["name"] for m in await _models(client, type="text", model_state="known")] == [KOBOLD_MODEL]
    one = (await client.get(f"{V2}/status/models/{KOBOLD_MODEL}")).json()
    assert check_body("ActiveModel[]", one) == [] and [(m["name"], m["type"]) for m in one] == [
        (KOBOLD_MODEL, "text")
    ]
    image = (await client.get(f"{V2}/status/models/stable_diffusion")).json()
    assert [(m["name"], m["count"]) for m in image] == [("stable_diffusion", 2)]
    assert (
        await client.get(f"{V2}/status/models/my-own-model")
    ).json() == []  # custom names are not looked up
    assert (await client.get(f"{V2}/status/models/Yiffy")).json() == []  # known, but idle


async def test_performance(client: httpx.AsyncClient, api_key: str, clock: FakeClock) -> None:
    await _serve_image(client, api_key)
    await _post(
        client, "interrogate/pop", api_key, {"name": "Alchemy Worker One", "forms": ["caption"], "threads": 4}
    )
    await _image_request(client, api_key, "stable_diffusion", n=3)
    await _text_request(client, api_key, "test-model")
    await _text_request(client, api_key, "test-model")
    job = await _post(
        client, "generate/text/pop", api_key, {"name": "Text Worker One", "models": ["test-model"]}
    )
    idle = (await client.get(f"{V2}/status/performance")).json()
    assert check_body("HordePerformance", idle) == []
    assert (idle["queued_requests"], idle["queued_text_requests"]) == (3, 2)  # queued and processing
    assert idle["queued_megapixelsteps"] == pytest.approx(3 * 512 * 512 * 30 / 1e6, abs=0.01)
    assert (idle["queued_tokens"], idle["past_minute_tokens"], idle["queued_forms"]) == (64, 0, 0)
    assert (idle["worker_count"], idle["thread_count"]) == (1, 2)
    assert (idle["text_worker_count"], idle["text_thread_count"]) == (1, 1)
    assert (idle["interrogator_count"], idle["interrogator_thread_count"]) == (1, 4)
    submit = {"id": job["id"], "generation": "there was a horde"}
    await _post(client, "generate/text/submit", api_key, submit)
    assert (await client.get(f"{V2}/status/performance")).json() == idle  # kept for a moment on this node
    clock.advance(3)
    busy = (await client.get(f"{V2}/status/performance")).json()
    assert (busy["queued_text_requests"], busy["queued_tokens"], busy["past_minute_tokens"]) == (1, 32, 32)
    clock.advance(61)
    later = (await client.get(f"{V2}/status/performance")).json()
    assert later["past_minute_tokens"] == 0 and later["worker_count"] == 1


async def test_modes(client: httpx.AsyncClient, api_key: str) -> None:
    plain = (await client.post(f"{V2}/dev/test-user", json={"oauth_id": "plain", "moderator": False})).json()
    anonymous = await client.get(f"{V2}/status/modes")
    assert anonymous.json() == {"maintenance_mode": False, "invite_only_mode": False}
    assert check_body("HordeModes", anonymous.json()) == []
    moderated = await client.get(f"{V2}/status/modes", headers={"apikey": api_key})
    assert moderated.json() == {"maintenance_mode": False, "invite_only_mode": False, "raid_mode": False}
    _error(await client.get(f"{V2}/status/modes", headers={"apikey": plain["api_key"]}), 403, "NotModerator")
    _error(await client.get(f"{V2}/status/modes", headers={"apikey": "0000000000"}), 403, "NotModerator")
    _error(await client.get(f"{V2}/status/modes", headers={"apikey": "no-such-key"}), 401, "InvalidAPIKey")


async def test_news(client: httpx.AsyncClient) -> None:
    news = (await client.get(f"{V2}/status/news")).json()
    assert check_body("Newspiece[]", news) == []
    assert [n["newspiece"] for n in news] == ["Second", "First"]  # the broken item is skipped
    first = {"date_published": "2026-01-01", "newspiece": "First", "importance": "Crisis"}
    assert news[1] == {**first, "tags": [], "more_info_urls": []}


@pytest.mark.parametrize("settings_overrides", [{"news_file": "/nonexistent/news.json"}])
async def test_no_news(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{V2}/status/news")
    assert response.status_code == 200 and response.json() == []


async def test_heartbeat(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{V2}/status/heartbeat")).json()
    assert body["message"] == "OK" and body["db_connection"] is True and body["version"]
    assert "model_reference_problems" not in body


async def test_heartbeat_says_the_model_reference_failed(client: httpx.AsyncClient, horde: Horde) -> None:
    text_reference = horde.settings.model_reference_text
    horde.catalog = await load_catalog("/nonexistent/sd.json", text_reference, horde.http)
    body = (await client.get(f"{V2}/status/heartbeat")).json()
    assert body["message"] == "OK"
    assert len(body["model_reference_problems"]) == 1
    assert "image model reference '/nonexistent/sd.json'" in body["model_reference_problems"][0]
