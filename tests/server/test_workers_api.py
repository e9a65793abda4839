"""`/workers`, `/workers/{id}`, `/workers/name/{name}` over the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests.contract.swagger import check_body, requires_swagger

V2 = "/api/v2"
REGEN = "AI Horde Worker reGen:9.0.0:https://github.com/Haidra-Org/horde-worker-reGen"

pytestmark = requires_swagger


async def _new_user(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    body = {"username": name, "oauth_id": f"oauth-{name}", "moderator": False, "trusted": False}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def _user(client: httpx.AsyncClient, name: str) -> str:
    key: str = (await _new_user(client, name))["api_key"]
    return key


async def _pop(client: httpx.AsyncClient, key: str, path: str, **body: Any) -> httpx.Response:
    return await client.post(f"{V2}/{path}", json=body, headers={"apikey": key})


async def _image_worker(client: httpx.AsyncClient, key: str, name: str) -> None:
    response = await _pop(
        client, key, "generate/pop", name=name, models=["stable_diffusion"], bridge_agent=REGEN,
        max_pixels=1048576, allow_lora=True, threads=2,
    )  # fmt: skip
    assert response.status_code == 200, response.text


async def _text_worker(client: httpx.AsyncClient, key: str, name: str) -> dict[str, Any]:
    response = await _pop(client, key, "generate/text/pop", name=name, models=["test-model"], max_length=256)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _alchemy_worker(client: httpx.AsyncClient, key: str, name: str) -> None:
    response = await _pop(client, key, "interrogate/pop", name=name, forms=["caption", "nsfw"])
    assert response.status_code == 200, response.text


async def _workers(client: httpx.AsyncClient, key: str | None = None, **params: str) -> list[dict[str, Any]]:
    headers = {"apikey": key} if key else {}
    response = await client.get(f"{V2}/workers", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    assert check_body("WorkerDetails[]", body) == []
    return body


async def _by_name(client: httpx.AsyncClient, name: str, key: str | None = None) -> dict[str, Any]:
    headers = {"apikey": key} if key else {}
    response = await client.get(f"{V2}/workers/name/{name}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert check_body("WorkerDetails", body) == []
    return body


async def _put(client: httpx.AsyncClient, worker_id: str, key: str, **body: Any) -> httpx.Response:
    return await client.put(f"{V2}/workers/{worker_id}", json=body, headers={"apikey": key})


def _error(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["rc"] == rc
    assert body["message"]


async def test_list_by_type_and_name(client: httpx.AsyncClient, api_key: str) -> None:
    await _image_worker(client, api_key, "Image Worker One")
    await _text_worker(client, api_key, "Text Worker One")
    await _alchemy_worker(client, api_key, "Alchemy Worker One")
    everyone = await _workers(client)
    assert sorted((w["type"], w["name"]) for w in everyone) == [
        ("image", "Image Worker One"), ("interrogation", "Alchemy Worker One"), ("text", "Text Worker One"),
    ]  # fmt: skip
    assert all(w["online"] for w in everyone)
    assert [w["name"] for w in await _workers(client, type="text")] == ["Text Worker One"]
    assert [w["name"] for w in await _workers(client, type="interrogation")] == ["Alchemy Worker One"]
    # name is case-insensitive and wins over type
    assert [w["name"] for w in await _workers(client, type="image", name="text worker ONE")] == [
        "Text Worker One"
    ]
    assert await _workers(client, name="nobody at all") == []
    _error(await client.get(f"{V2}/workers", params={"type": "alchemy"}), 400, "BadRequest")


async def test_kind_specific_fields(client: httpx.AsyncClient, api_key: str) -> None:
    await _image_worker(client, api_key, "Image Worker One")
    await _text_worker(client, api_key, "Text Worker One")
    await _alchemy_worker(client, api_key, "Alchemy Worker One")
    image = await _by_name(client, "Image Worker One")
    assert image["models"] == ["stable_diffusion"] and image["max_pixels"] == 1048576
    assert image["lora"] is True and image["controlnet"] is False and image["threads"] == 2
    assert image["bridge_agent"] == REGEN and image["megapixelsteps_generated"] == 0
    assert "max_length" not in image and "forms" not in image
    text = await _by_name(client, "text worker one")
    assert (
        text["models"] == ["test-model"] and text["max_length"] == 256 and text["max_context_length"] == 2048
    )
    assert "max_pixels" not in text and "img2img" not in text
    alchemy = await _by_name(client, "Alchemy Worker One")
    assert alchemy["type"] == "interrogation" and alchemy["forms"] == ["caption", "nsfw"]
    assert "models" not in alchemy and "max_length" not in alchemy
    for worker in (image, text, alchemy):
        assert worker["performance"] == "No requests fulfilled yet"
        assert worker["requests_fulfilled"] == 0 and worker["kudos_rewards"] == 0
        assert worker["team"] == {"name": None, "id": None}
        assert (
            worker["trusted"] is True and worker["flagged"] is False and worker["maintenance_mode"] is False
        )


async def test_rewards_and_performance_after_a_job(client: httpx.AsyncClient, api_key: str) -> None:
    body = {"prompt": "Once upon a time", "params": {"max_length": 32}}
    assert (
        await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    ).status_code == 202
    job = await _text_worker(client, api_key, "Text Worker One")
    submit = {"id": job["id"], "generation": "there was a horde"}
    response = await client.post(f"{V2}/generate/text/submit", json=submit, headers={"apikey": api_key})
    assert response.status_code == 200, response.text
    # SEMANTICS 4.2 by hand: an unknown model and an untrusted owner earn the prompt's context
    # multiplier, 1.2 + 2.2**log2(4/1024) = 1.2018 -> 1.20
    reward = 1.2
    assert response.json()["reward"] == pytest.approx(reward)
    worker = await _by_name(client, "Text Worker One")
    assert worker["requests_fulfilled"] == 1
    # paid after the bridge multiplier: an unknown bridge earns x0.75 (SEMANTICS 4.5)
    assert worker["kudos_rewards"] == pytest.approx(reward * 0.75) and worker["kudos_details"][
        "generated"
    ] == pytest.approx(reward * 0.75)
    assert worker["performance"].endswith(" tokens per second") and worker["tokens_generated"] > 0


async def test_privileged_fields(client: httpx.AsyncClient, api_key: str) -> None:
    user = await _new_user(client, "plain")
    plain, alias = user["api_key"], user["alias"]
    await _text_worker(client, plain, "Plain Worker")
    for key in (None, plain):
        worker = await _by_name(client, "Plain Worker", key)
        assert not {"owner", "ipaddr", "paused", "contact"} & set(worker)
        listed = await _workers(client, key)
        assert not {"owner", "ipaddr", "paused"} & set(listed[0])
    moderated = await _by_name(client, "Plain Worker", api_key)
    assert moderated["owner"] == alias and moderated["ipaddr"] == "127.0.0.1" and moderated["paused"] is False
    assert (await _workers(client, api_key))[0]["owner"] == alias
    # an owner who makes their workers public shows who owns them, and nothing more
    put = await client.put(
        f"{V2}/users/{user['user_id']}", json={"public_workers": True}, headers={"apikey": plain}
    )
    assert put.status_code == 200, put.text
    public = await _by_name(client, "Plain Worker")
    assert public["owner"] == alias and "ipaddr" not in public


async def test_get_by_id_and_unknown_ids(
    client: httpx.AsyncClient, api_key: str, horde: Horde, clock: FakeClock
) -> None:
    await _text_worker(client, api_key, "Text Worker One")
    worker_id = (await _by_name(client, "Text Worker One"))["id"]
    clock.advance(horde.settings.worker_online_window + 1)
    assert await _workers(client) == []  # offline workers are not listed...
    response = await client.get(f"{V2}/workers/{worker_id}")  # ...but can be looked up
    assert response.status_code == 200 and response.json()["online"] is False
    assert check_body("WorkerDetails", response.json()) == []
    _error(await client.get(f"{V2}/workers/{uuid.uuid4()}"), 404, "WorkerNotFound")
    _error(await client.get(f"{V2}/workers/not-a-uuid"), 404, "WorkerNotFound")
    _error(await client.get(f"{V2}/workers/name/Nobody Here"), 404, "WorkerNotFound")


async def test_maintenance_reaches_the_next_pop(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _user(client, "plain")
    await _text_worker(client, plain, "Plain Worker")
    worker_id = (await _by_name(client, "Plain Worker"))["id"]
    response = await _put(client, worker_id, plain, maintenance=True, maintenance_msg="back soon")
    assert response.status_code == 200 and response.json() == {"maintenance": True}
    assert check_body("ModifyWorker", response.json()) == []
    pop = await _pop(client, plain, "generate/text/pop", name="Plain Worker", models=["test-model"])
    _error(pop, 403, "WorkerMaintenance")
    assert pop.json()["message"] == "back soon"
    assert (await _by_name(client, "Plain Worker"))["maintenance_mode"] is True
    assert (await _put(client, worker_id, api_key, maintenance=False)).json() == {"maintenance": False}
    pop = await _pop(client, plain, "generate/text/pop", name="Plain Worker", models=["test-model"])
    assert pop.status_code == 200, pop.text


async def test_pause_is_for_moderators(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _user(client, "plain")
    await _text_worker(client, plain, "Plain Worker")
    worker_id = (await _by_name(client, "Plain Worker"))["id"]
    _error(await _put(client, worker_id, plain, paused=True), 403, "NotModerator")
    assert (await _put(client, worker_id, api_key, paused=True)).json() == {"paused": True}
    body = {"prompt": "Once upon a time", "params": {"max_length": 32}}
    assert (
        await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    ).status_code == 202
    assert (await _text_worker(client, plain, "Plain Worker"))["id"] is None  # paused: nothing handed out
    assert (await _by_name(client, "Plain Worker", api_key))["paused"] is True


async def test_info_name_and_team(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _user(client, "plain")
    other = await _user(client, "other")
    await _text_worker(client, plain, "Plain Worker")
    await _text_worker(client, api_key, "Mod Worker")
    worker_id = (await _by_name(client, "Plain Worker"))["id"]
    _error(await _put(client, worker_id, other, info="mine now"), 403, "NotOwner")
    too_long = await _put(client, worker_id, plain, info="x" * 1001)
    assert too_long.status_code == 400 and "info" in too_long.json()["errors"]
    response = await _put(client, worker_id, plain, info="runs on a toaster", name="Toaster Worker")
    assert response.status_code == 200
    assert response.json() == {"info": "runs on a toaster", "name": "Toaster Worker"}
    renamed = await _by_name(client, "toaster worker")
    assert renamed["id"] == worker_id and renamed["info"] == "runs on a toaster"
    _error(await _put(client, worker_id, plain, name="MOD WORKER"), 400, "WorkerNameAlreadyExists")
    _error(await _put(client, worker_id, plain, name="my colab box"), 400, "ProfaneWorkerName")
    # teams do not exist here: naming one is TeamNotFound and writes nothing else
    _error(await _put(client, worker_id, plain, team=str(uuid.uuid4()), info="changed"), 404, "TeamNotFound")
    assert (await _by_name(client, "Toaster Worker"))["info"] == "runs on a toaster"
    assert (await _put(client, worker_id, plain, team="")).json() == {"team": "None"}
    _error(await _put(client, worker_id, plain), 400, "NoWorkerModSelected")
    _error(await _put(client, worker_id, plain, maintenance_msg="only a message"), 400, "NoWorkerModSelected")
    _error(await _put(client, str(uuid.uuid4()), plain, info="x"), 404, "WorkerNotFound")
    _error(await _put(client, worker_id, "not-a-key-at-all", info="x"), 401, "InvalidAPIKey")


async def test_delete(client: httpx.AsyncClient, api_key: str) -> None:
    plain = await _user(client, "plain")
    other = await _user(client, "other")
    body = {"prompt": "Once upon a time", "params": {"max_length": 32}}
    assert (
        await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    ).status_code == 202
    job = await _text_worker(client, plain, "Plain Worker")
    worker_id = (await _by_name(client, "Plain Worker"))["id"]
    _error(await client.delete(f"{V2}/workers/{worker_id}", headers={"apikey": other}), 403, "NotOwner")
    _error(await client.delete(f"{V2}/workers/{worker_id}", headers={"apikey": plain}), 423, "Locked")
    submit = {"id": job["id"], "generation": "done"}
    assert (
        await client.post(f"{V2}/generate/text/submit", json=submit, headers={"apikey": plain})
    ).status_code == 200
    response = await client.delete(f"{V2}/workers/{worker_id}", headers={"apikey": plain})
    assert response.status_code == 200
    assert response.json() == {"deleted_id": worker_id, "deleted_name": "Plain Worker"}
    assert check_body("DeletedWorker", response.json()) == []
    _error(await client.get(f"{V2}/workers/{worker_id}"), 404, "WorkerNotFound")
    assert await _workers(client) == []
    # a moderator may delete anyone's worker
    await _text_worker(client, plain, "Second Worker")
    second = (await _by_name(client, "Second Worker"))["id"]
    deleted = await client.delete(f"{V2}/workers/{second}", headers={"apikey": api_key})
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted_id": second, "deleted_name": "Second Worker"}
    _error(await client.get(f"{V2}/workers/{second}"), 404, "WorkerNotFound")
