"""Worker limits honoured in matching (issue 13, item 6): `limit_max_steps` (skipped as `step_count`),
text `softprompts` (`matching_softprompt`), `allow_unsafe_ipaddr` (`unsafe_ip`), and special models
(`horde_special::alias#id`: special users only, hidden from the model list, never any-model work)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from horde.server.kit.orm import table
from horde.server.state import Horde
from horde.server.users.models import User
from tests.helpers import V2, new_user

REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


async def _image(client: httpx.AsyncClient, key: str, **fields: Any) -> httpx.Response:
    body = {
        "prompt": "a lighthouse at dusk",
        "params": {"steps": 10},
        "models": ["stable_diffusion"],
        **fields,
    }
    return await client.post(f"{V2}/generate/async", json=body, headers={"apikey": key})


async def _pop(
    client: httpx.AsyncClient, key: str, path: str = "generate/pop", **fields: Any
) -> dict[str, Any]:
    body = {"name": "limited worker", "models": ["stable_diffusion"], "bridge_agent": REGEN, **fields}
    response = await client.post(f"{V2}/{path}", json=body, headers={"apikey": key})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _accepted(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    request_id: str = response.json()["id"]
    return request_id


def _refused(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["rc"] == rc, response.text


async def test_limit_max_steps_skips_jobs_with_more_steps(client: httpx.AsyncClient, api_key: str) -> None:
    # stable_diffusion has no step requirements: the mean of the defaults (20, 40) is 30
    long_id = _accepted(await _image(client, api_key, params={"steps": 40}))
    limited = await _pop(client, api_key, limit_max_steps=True)
    assert limited["id"] is None
    assert limited["skipped"]["step_count"] == 1 and limited["skipped"]["models"] == 0
    short_id = _accepted(await _image(client, api_key, params={"steps": 30}))
    took = await _pop(client, api_key, limit_max_steps=True)
    assert took["id"] is not None and took["payload"]["ddim_steps"] == 30
    assert (await client.get(f"{V2}/generate/check/{short_id}")).json()["processing"] == 1
    other = await _pop(client, api_key, name="unlimited worker")
    assert other["id"] is not None and other["payload"]["ddim_steps"] == 40
    assert (await client.get(f"{V2}/generate/check/{long_id}")).json()["processing"] == 1


async def test_limit_max_steps_uses_the_models_own_step_range(
    client: httpx.AsyncClient, api_key: str
) -> None:
    # DreamShaper XL asks for 3 to 6 steps: a limited worker takes at most 4.5 of them; a slow sampler
    # counts its steps twice
    models = ["DreamShaper XL"]
    _accepted(await _image(client, api_key, models=models, params={"steps": 3, "sampler_name": "k_heun"}))
    popped = await _pop(client, api_key, models=models, limit_max_steps=True)
    assert popped["id"] is None and popped["skipped"]["step_count"] == 1
    _accepted(await _image(client, api_key, models=models, params={"steps": 4}))
    popped = await _pop(client, api_key, models=models, limit_max_steps=True)
    assert popped["id"] is not None and popped["payload"]["ddim_steps"] == 4


async def test_sdxl_qr_codes_need_allow_sdxl_controlnet(client: httpx.AsyncClient, api_key: str) -> None:
    qr = {
        "steps": 10,
        "workflow": "qr_code",
        "extra_texts": [{"text": "https://example.org", "reference": "qr_code"}],
    }
    _accepted(await _image(client, api_key, models=["SDXL 1.0"], params=qr))
    refused = await _pop(client, api_key, models=["SDXL 1.0"])
    assert refused["id"] is None and refused["skipped"]["controlnet"] == 1
    took = await _pop(client, api_key, models=["SDXL 1.0"], allow_sdxl_controlnet=True)
    assert took["id"] is not None and took["payload"]["workflow"] == "qr_code"
    _accepted(await _image(client, api_key, params=qr))  # an SD 1.5 QR code needs no SDXL ControlNet
    assert (await _pop(client, api_key, name="sd15 worker"))["id"] is not None


async def test_softprompts(client: httpx.AsyncClient, api_key: str) -> None:
    body = {"prompt": "once upon a time", "softprompt": "Fantasy_v2"}
    request_id = _accepted(
        await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    )
    text = "generate/text/pop"
    none = await _pop(client, api_key, text, name="text worker", models=[])
    assert none["id"] is None and none["skipped"]["matching_softprompt"] == 1
    other = await _pop(client, api_key, text, name="text worker", models=[], softprompts=["scifi"])
    assert other["id"] is None and other["skipped"]["matching_softprompt"] == 1
    took = await _pop(client, api_key, text, name="text worker", models=[], softprompts=["fantasy"])
    assert took["id"] is not None and took["softprompt"] == "Fantasy_v2"
    status = (await client.get(f"{V2}/generate/text/status/{request_id}")).json()
    assert status["processing"] == 1
    plain = {"prompt": "no softprompt"}
    _accepted(await client.post(f"{V2}/generate/text/async", json=plain, headers={"apikey": api_key}))
    any_worker = await _pop(client, api_key, text, name="text worker", models=[])
    assert any_worker["id"] is not None and "softprompt" not in any_worker
    too_long = {"prompt": "x", "softprompt": "s" * 256}
    refused = await client.post(f"{V2}/generate/text/async", json=too_long, headers={"apikey": api_key})
    _refused(refused, 400, "BadRequest")


async def _make_special(horde: Horde, key: str, client: httpx.AsyncClient) -> str:
    me = (await client.get(f"{V2}/find_user", headers={"apikey": key})).json()
    async with horde.db.autocommit() as conn:  # PUT /users `special` is another branch's (issue 12)
        await conn.execute(update(table(User)).where(table(User).c.id == me["id"]).values(special=True))
    horde.users.forget_all()
    alias: str = me["username"]
    return alias


async def test_special_model_requests(client: httpx.AsyncClient, horde: Horde) -> None:
    plain = await new_user(client, "plain")
    special = await new_user(client, "ada")
    alias = await _make_special(horde, special, client)
    own = f"horde_special::{alias}"
    payload = {"steps": 10, "special": {"pipeline": "x"}}
    # the reference's rcs for these three arrive as plain Forbidden / BadRequest (SEMANTICS.md 2)
    _refused(await _image(client, plain, models=[own]), 403, "Forbidden")
    _refused(await _image(client, plain, models=[own], params=payload), 400, "BadRequest")  # the field first
    _refused(await _image(client, plain, params=payload), 400, "BadRequest")
    _refused(await _image(client, special, models=["horde_special::somebody#999"], params=payload), 403,
             "Forbidden")  # fmt: skip
    _refused(await _image(client, special, models=["horde_special"], params=payload), 400,
             "SpecialMissingUsername")  # fmt: skip
    _refused(await _image(client, special, models=[own]), 400, "SpecialMissingPayload")
    _accepted(await _image(client, special, models=[own], params=payload))


async def test_special_models_are_served_by_special_users_only(
    client: httpx.AsyncClient, horde: Horde
) -> None:
    plain = await new_user(client, "plain", trusted=True)
    special = await new_user(client, "ada", trusted=True)
    alias = await _make_special(horde, special, client)
    own = f"horde_special::{alias}"
    request_id = _accepted(
        await _image(client, special, models=[own], params={"steps": 10, "special": {"a": 1}})
    )
    any_model = _accepted(await _image(client, special, models=[]))
    # a plain user's worker cannot declare it: dropped, or refused when it is all the worker declares
    refused = await client.post(f"{V2}/generate/pop", json={"name": "plain worker", "models": [own]},
                                headers={"apikey": plain})  # fmt: skip
    _refused(refused, 400, "BadRequest")
    popped = await _pop(client, plain, name="plain worker", models=["stable_diffusion", own])
    assert popped["id"] is not None and popped["id"] != request_id  # the any-model request
    worker = (await client.get(f"{V2}/workers/name/plain worker")).json()
    assert worker["models"] == ["stable_diffusion"]
    assert (await client.get(f"{V2}/generate/check/{any_model}")).json()["processing"] == 1
    # the special worker gets its model's request with the special payload, and no any-model work
    _accepted(await _image(client, special, models=[]))
    served = await _pop(client, special, name="special worker", models=[own])
    assert served["id"] is not None and served["model"] == own
    assert served["payload"]["special"] == {"a": 1}
    again = await _pop(client, special, name="special worker", models=[own])
    assert again["id"] is None and again["skipped"]["models"] == 1
    listed = (await client.get(f"{V2}/status/models")).json()
    assert [m for m in listed if m["name"].startswith("horde_special")] == []


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    unsafe = tmp_path / "unsafe.txt"
    unsafe.write_text("127.0.0.1\n")  # the test client's address
    return {"unsafe_ips_file": str(unsafe)}


async def test_allow_unsafe_ipaddr(client: httpx.AsyncClient, api_key: str) -> None:
    request_id = _accepted(await _image(client, api_key))
    careful = await _pop(client, api_key, name="careful worker", allow_unsafe_ipaddr=False)
    assert careful["id"] is None and careful["skipped"]["unsafe_ip"] == 1
    relaxed = await _pop(client, api_key, name="relaxed worker")
    assert relaxed["id"] is not None
    assert (await client.get(f"{V2}/generate/check/{request_id}")).json()["processing"] == 1
