"""Alchemy (interrogation) requests end to end over the API."""

from __future__ import annotations

import base64

import httpx

from horde.server.jobs import scheduled
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests.helpers import V2, png_b64, webp_b64

FORMS = [{"name": "caption"}, {"name": "nsfw"}, {"name": "RealESRGAN_x2plus"}, {"name": "nsfw"}]


async def _request(client: httpx.AsyncClient, key: str) -> str:
    body = {"forms": FORMS, "source_image": png_b64(600, 300)}
    response = await client.post(f"{V2}/interrogate/async", json=body, headers={"apikey": key})
    assert response.status_code == 202, response.text
    request_id: str = response.json()["id"]
    return request_id


async def _pop(client: httpx.AsyncClient, key: str, forms: list[str], amount: int = 5) -> dict[str, object]:
    body = {"name": "alchemist one", "forms": forms, "amount": amount, "bridge_agent": "horde-worker:0.1.0:x"}
    response = await client.post(f"{V2}/interrogate/pop", json=body, headers={"apikey": key})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def test_forms_round_trip(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = await _request(client, api_key)
    status = (await client.get(f"{V2}/interrogate/status/{request_id}")).json()
    assert status["state"] == "waiting"
    assert sorted(f["form"] for f in status["forms"]) == ["RealESRGAN_x2plus", "caption", "nsfw"]
    popped = await _pop(client, api_key, ["caption", "nsfw", "RealESRGAN_x2plus"])
    forms = popped["forms"]
    assert isinstance(forms, list) and len(forms) == 3
    results = {"caption": {"caption": "a red square"}, "nsfw": {"nsfw": False}}
    for form in forms:
        assert form["source_image"].startswith("http://testserver/objects/")
        if form["form"] == "RealESRGAN_x2plus":
            put = await client.put(
                form["r2_upload"].removeprefix("http://testserver"), content=base64.b64decode(webp_b64())
            )
            assert put.status_code == 200
            result: dict[str, object] = {"RealESRGAN_x2plus": "R2"}
        else:
            assert "r2_upload" not in form
            result = results[form["form"]]
        response = await client.post(
            f"{V2}/interrogate/submit", json={"id": form["id"], "result": result}, headers={"apikey": api_key}
        )
        assert response.status_code == 200, response.text
        assert response.json()["reward"] > 0
    status = (await client.get(f"{V2}/interrogate/status/{request_id}")).json()
    assert status["state"] == "done"
    by_form = {f["form"]: f for f in status["forms"]}
    assert by_form["caption"]["result"] == {"caption": "a red square"}
    assert by_form["nsfw"]["result"] == {"nsfw": False}
    upscaled = by_form["RealESRGAN_x2plus"]["result"]["RealESRGAN_x2plus"]
    assert upscaled.startswith("http://testserver/objects/")


async def test_an_r2_form_without_its_upload_is_refused(client: httpx.AsyncClient, api_key: str) -> None:
    """An upscale submitted as "R2" before anything was uploaded is refused and the form stays the
    worker's: it may still upload and submit (as an image job, ADR 0014)."""
    request_id = await _request(client, api_key)
    popped = await _pop(client, api_key, ["RealESRGAN_x2plus"])
    forms = popped["forms"]
    assert isinstance(forms, list) and len(forms) == 1
    form = forms[0]
    submit = {"id": form["id"], "result": {"RealESRGAN_x2plus": "R2"}}
    refused = await client.post(f"{V2}/interrogate/submit", json=submit, headers={"apikey": api_key})
    assert (refused.status_code, refused.json()["rc"]) == (400, "ImageValidationFailed")
    status = (await client.get(f"{V2}/interrogate/status/{request_id}")).json()
    assert {f["form"]: f["state"] for f in status["forms"]}["RealESRGAN_x2plus"] == "processing"
    put = await client.put(
        form["r2_upload"].removeprefix("http://testserver"), content=base64.b64decode(webp_b64())
    )
    assert put.status_code == 200
    accepted = await client.post(f"{V2}/interrogate/submit", json=submit, headers={"apikey": api_key})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["reward"] > 0


async def test_worker_only_gets_its_forms(client: httpx.AsyncClient, api_key: str) -> None:
    await _request(client, api_key)
    popped = await _pop(client, api_key, ["nsfw"])
    forms = popped["forms"]
    assert isinstance(forms, list) and [f["form"] for f in forms] == ["nsfw"]
    assert (await _pop(client, api_key, ["nsfw"]))["forms"] == []


async def test_stale_form_returns_to_waiting(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    request_id = await _request(client, api_key)
    await _pop(client, api_key, ["caption"])
    clock.advance(horde.settings.alchemy_job_ttl + 1)
    assert await scheduled.expire_leases(horde) == 1
    status = (await client.get(f"{V2}/interrogate/status/{request_id}")).json()
    caption = next(f for f in status["forms"] if f["form"] == "caption")
    assert caption["state"] == "waiting"


async def test_cancel_marks_waiting_forms_cancelled(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = await _request(client, api_key)
    response = await client.delete(f"{V2}/interrogate/status/{request_id}")
    assert response.status_code == 200
    status = (await client.get(f"{V2}/interrogate/status/{request_id}")).json()
    assert {f["state"] for f in status["forms"]} == {"cancelled"}
    assert (await _pop(client, api_key, ["caption", "nsfw"]))["forms"] == []
