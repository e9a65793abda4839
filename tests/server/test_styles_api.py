"""`/styles`, style examples and `/collections` over the API, and requests made with a style or a
collection through a scripted worker, on SQLite and PostgreSQL (SEMANTICS.md 1.9, 8; ADR 0024).

Every bad input the issue lists gets the reference's status and rc and writes nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from horde.contract.rc import RC
from horde.server.kit.clock import FakeClock
from horde.server.kit.orm import table
from horde.server.kudos.scheduled import fold_postings
from horde.server.sharedkeys.scheduled import fold_shared_key_charges
from horde.server.state import Horde
from horde.server.styles.models import Style, StyleCollection, StyleExample, StyleUse
from horde.server.styles.scheduled import fold_style_uses
from tests.contract.swagger import check_body, requires_swagger
from tests.helpers import V2, webp_b64

pytestmark = requires_swagger
REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"
TEXT_MODEL = "koboldcpp/style-model"
EXAMPLE = "https://example.org/styles/one.webp"

IMAGE_STYLE: dict[str, Any] = {
    "name": "cinematic",
    "info": "wide, moody and lit like a film",
    "prompt": "{p}, cinematic lighting###{np}, blurry",
    "params": {"steps": 12, "sampler_name": "k_euler", "cfg_scale": 6.5},
    "models": ["stable_diffusion"],
    "tags": ["film", "moody"],
}
TEXT_STYLE: dict[str, Any] = {
    "name": "storyteller",
    "info": "tells it like a fairy tale",
    "prompt": "Once upon a time, {p}",
    "params": {"temperature": 0.7, "top_k": 40},
    "models": [TEXT_MODEL],
    "tags": ["story"],
}


async def _user(client: httpx.AsyncClient, moderator: str, name: str, **roles: bool) -> str:
    """The key of a new user; `customizer=True` is set by the moderator (the test-user route has no
    such field)."""
    customizer = roles.pop("customizer", False)
    body = {"username": name, "oauth_id": f"oauth-{name}", "moderator": False, "trusted": False, **roles}
    made = await client.post(f"{V2}/dev/test-user", json=body)
    assert made.status_code == 201, made.text
    if customizer:
        changed = await client.put(
            f"{V2}/users/{made.json()['user_id']}", json={"customizer": True}, headers={"apikey": moderator}
        )
        assert changed.status_code == 200, changed.text
    key: str = made.json()["api_key"]
    return key


@pytest.fixture
async def owner(client: httpx.AsyncClient, api_key: str) -> str:
    return await _user(client, api_key, "style_owner", customizer=True)


@pytest.fixture
async def other(client: httpx.AsyncClient, api_key: str) -> str:
    return await _user(client, api_key, "style_other", customizer=True)


def _error(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["rc"] == rc, response.text


async def _post(client: httpx.AsyncClient, key: str, path: str, body: Any) -> httpx.Response:
    return await client.post(f"{V2}{path}", json=body, headers={"apikey": key})


async def _style(client: httpx.AsyncClient, key: str, kind: str = "image", **changes: Any) -> str:
    body = {**(IMAGE_STYLE if kind == "image" else TEXT_STYLE), **changes}
    response = await _post(client, key, f"/styles/{kind}", body)
    assert response.status_code == 200, response.text
    assert check_body("StyleModify", response.json()) == []
    style_id: str = response.json()["id"]
    return style_id


async def _count(horde: Horde, model: type[Any]) -> int:
    async with horde.db.autocommit() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table(model))) or 0)


# --- styles ---------------------------------------------------------------------------------------


async def test_create_get_list_and_by_name(client: httpx.AsyncClient, owner: str) -> None:
    style_id = await _style(client, owner)
    got = await client.get(f"{V2}/styles/image/{style_id}")
    assert got.status_code == 200, got.text
    body = got.json()
    assert check_body("StyleStable", body) == []
    assert body["name"] == "cinematic" and body["prompt"] == IMAGE_STYLE["prompt"]
    assert body["params"] == IMAGE_STYLE["params"]  # only what the style sets: no defaults
    assert body["models"] == ["stable_diffusion"] and body["tags"] == ["film", "moody"]
    assert body["creator"].startswith("style_owner#") and body["use_count"] == 0
    assert body["public"] is True and body["nsfw"] is False and body["examples"] == []
    alias = body["creator"]
    for name in (f"{alias}::style::cinematic", "style::cinematic", f"{alias}::cinematic", "cinematic"):
        by_name = await client.get(f"{V2}/styles/image_by_name/{quote(name, safe='')}")  # "#" must be escaped
        assert by_name.status_code == 200, (name, by_name.text)
        assert by_name.json()["id"] == style_id
    listed = (await client.get(f"{V2}/styles/image")).json()
    assert [s["id"] for s in listed] == [style_id]
    assert [s["id"] for s in (await client.get(f"{V2}/styles/image", params={"tag": "film"})).json()] == [
        style_id
    ]
    assert (await client.get(f"{V2}/styles/image", params={"tag": "nope"})).json() == []
    by_model = await client.get(f"{V2}/styles/image", params={"model": "stable_diffusion", "sort": "age"})
    assert [s["id"] for s in by_model.json()] == [style_id]
    assert (await client.get(f"{V2}/styles/text")).json() == []


async def test_private_styles_are_not_listed_but_found(
    client: httpx.AsyncClient, owner: str, clock: FakeClock
) -> None:
    style_id = await _style(client, owner, public=False)
    clock.advance(1)
    public_id = await _style(client, owner, "text")
    assert (await client.get(f"{V2}/styles/image")).json() == []
    assert (await client.get(f"{V2}/styles/image/{style_id}")).status_code == 200
    # the owner's details list both; anyone else's only the public one
    me = (await client.get(f"{V2}/find_user", headers={"apikey": owner})).json()
    alias = me["username"]
    assert me["styles"] == [
        {"name": f"{alias}::style::cinematic", "id": style_id, "type": "image"},
        {"name": f"{alias}::style::storyteller", "id": public_id, "type": "text"},
    ]
    seen = (await client.get(f"{V2}/users/{me['id']}")).json()
    assert [s["id"] for s in seen["styles"]] == [public_id]


async def test_list_pages_and_sorts(client: httpx.AsyncClient, owner: str, clock: FakeClock) -> None:
    ids = []
    for i in range(27):
        clock.advance(1)
        ids.append(await _style(client, owner, name=f"style {i:02}"))
    first = (await client.get(f"{V2}/styles/image", params={"sort": "age"})).json()
    second = (await client.get(f"{V2}/styles/image", params={"sort": "age", "page": 2})).json()
    assert [s["id"] for s in first] == ids[::-1][:25]
    assert [s["id"] for s in second] == ids[::-1][25:]
    _error(await client.get(f"{V2}/styles/image", params={"sort": "best"}), 400, RC.BadRequest)
    _error(await client.get(f"{V2}/styles/image", params={"page": 0}), 400, RC.BadRequest)
    _error(await client.get(f"{V2}/styles/image", params={"page": 10**12}), 400, RC.BadRequest)
    _error(await client.get(f"{V2}/collections", params={"page": 10**12}), 400, RC.BadRequest)
    _error(await client.get(f"{V2}/collections", params={"type": "video"}), 400, RC.BadRequest)
    # an owner id past 32 bits names nobody (it must not reach the database's integer column)
    huge = quote("someone#99999999999::style::style 01", safe="")
    _error(await client.get(f"{V2}/styles/image_by_name/{huge}"), 404, RC.ImageStyleNotFound)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"prompt": "a painting of {np} and more"}, "no {p}"),
        ({"prompt": "a painting of {p} only"}, "no {np} in an image style"),
        ({"models": ["a", "b", "c", "d", "e", "f"]}, "6 models"),
        ({"models": []}, "no model"),
        ({"tags": [f"tag{i}" for i in range(11)]}, "11 tags"),
        ({"sharedkey": "not-a-uuid-but-thirty-six-characters"}, "a malformed shared key"),
    ],
)
async def test_bad_styles_are_refused(
    client: httpx.AsyncClient, horde: Horde, owner: str, changes: dict[str, Any], why: str
) -> None:
    response = await _post(client, owner, "/styles/image", {**IMAGE_STYLE, **changes})
    _error(response, 400, RC.BadRequest)
    assert await _count(horde, Style) == 0, why


async def test_text_prompt_needs_only_p(client: httpx.AsyncClient, horde: Horde, owner: str) -> None:
    _error(
        await _post(client, owner, "/styles/text", {**TEXT_STYLE, "prompt": "no placeholder"}),
        400,
        "BadRequest",
    )
    assert await _count(horde, Style) == 0
    await _style(client, owner, "text", prompt="Tell me: {p}")


async def test_name_taken_by_the_same_user(
    client: httpx.AsyncClient, horde: Horde, owner: str, other: str
) -> None:
    await _style(client, owner)
    _error(await _post(client, owner, "/styles/image", IMAGE_STYLE), 400, RC.BadRequest)
    _error(
        await _post(client, owner, "/styles/text", {**TEXT_STYLE, "name": "cinematic"}), 400, RC.BadRequest
    )
    assert await _count(horde, Style) == 1
    await _style(client, other)  # names are unique per user only
    assert await _count(horde, Style) == 2


async def test_who_may_create(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    plain = await _user(client, api_key, "style_plain")
    trusted = await _user(client, api_key, "style_trusted", trusted=True)
    _error(await _post(client, "0000000000", "/styles/image", IMAGE_STYLE), 403, RC.StylesAnonForbidden)
    _error(await _post(client, plain, "/styles/image", IMAGE_STYLE), 403, RC.StylesRequiresCustomizer)
    assert await _count(horde, Style) == 0
    await _style(client, trusted)


async def test_patch_and_delete(
    client: httpx.AsyncClient, horde: Horde, owner: str, other: str, api_key: str
) -> None:
    style_id = await _style(client, owner)
    path = f"{V2}/styles/image/{style_id}"
    before = (await client.get(path)).json()
    _error(
        await client.patch(path, json={"info": "taken over"}, headers={"apikey": other}), 403, RC.Forbidden
    )
    _error(await client.delete(path, headers={"apikey": other}), 403, RC.Forbidden)
    assert (await client.get(path)).json() == before
    _error(
        await client.patch(path, json={"models": ["a"] * 0}, headers={"apikey": owner}), 400, RC.BadRequest
    )
    _error(await client.patch(path, json={}, headers={"apikey": owner}), 400, RC.BadRequest)
    changed = await client.patch(
        path,
        json={"info": "now brighter", "tags": ["bright"], "params": {"steps": 8}},
        headers={"apikey": owner},
    )
    assert changed.status_code == 200, changed.text
    after = (await client.get(path)).json()
    assert after["info"] == "now brighter" and after["tags"] == ["bright"] and after["params"] == {"steps": 8}
    assert (await client.get(f"{V2}/styles/image", params={"tag": "film"})).json() == []
    assert len((await client.get(f"{V2}/styles/image", params={"tag": "bright"})).json()) == 1
    # a text style's id on the image routes, and the other way round: the reference's generic 400
    text_id = await _style(client, owner, "text")
    _error(await client.get(f"{V2}/styles/image/{text_id}"), 400, RC.BadRequest)
    _error(await client.get(f"{V2}/styles/text/{style_id}"), 400, RC.BadRequest)
    _error(await client.get(f"{V2}/styles/image/not-an-id"), 404, RC.ImageStyleNotFound)
    _error(await client.get(f"{V2}/styles/text_by_name/nobody"), 404, RC.StyleNotFound)
    deleted = await client.delete(path, headers={"apikey": api_key})  # a moderator may delete
    assert deleted.status_code == 200 and deleted.json() == {"message": "OK"}
    _error(await client.get(path), 404, RC.ImageStyleNotFound)


# --- examples -------------------------------------------------------------------------------------


async def test_examples(
    client: httpx.AsyncClient, horde: Horde, owner: str, other: str, clock: FakeClock
) -> None:
    style_id = await _style(client, owner)
    path = f"/styles/image/{style_id}/example"
    first = await _post(client, owner, path, {"url": EXAMPLE})
    assert first.status_code == 200, first.text
    assert check_body("StyleModify", first.json()) == []
    _error(await _post(client, owner, path, {"url": EXAMPLE}), 400, RC.BadRequest)  # already used
    _error(await _post(client, owner, path, {"url": "http://example.org/a.webp"}), 400, RC.BadRequest)
    _error(await _post(client, other, path, {"url": "https://example.org/b.webp"}), 403, RC.Forbidden)
    ids = [first.json()["id"]]
    for i in range(3):
        clock.advance(1)
        made = await _post(client, owner, path, {"url": f"https://example.org/{i}.webp", "primary": i == 1})
        assert made.status_code == 200, made.text
        ids.append(made.json()["id"])
    _error(await _post(client, owner, path, {"url": "https://example.org/fifth.webp"}), 400, RC.BadRequest)
    assert await _count(horde, StyleExample) == 4
    shown = (await client.get(f"{V2}/styles/image/{style_id}")).json()["examples"]
    assert [e["id"] for e in shown] == ids
    assert [e["primary"] for e in shown] == [False, False, True, False]  # the last asked to be primary
    patched = await client.patch(
        f"{V2}{path}/{ids[0]}",
        json={"url": "https://example.org/new.webp", "primary": True},
        headers={"apikey": owner},
    )
    assert patched.status_code == 200, patched.text
    shown = (await client.get(f"{V2}/styles/image/{style_id}")).json()["examples"]
    assert shown[0] == {"id": ids[0], "url": "https://example.org/new.webp", "primary": True}
    assert sum(e["primary"] for e in shown) == 1
    _error(await client.delete(f"{V2}{path}/{ids[0]}", headers={"apikey": other}), 403, RC.Forbidden)
    gone = await client.delete(f"{V2}{path}/{ids[0]}", headers={"apikey": owner})
    assert gone.status_code == 200, gone.text
    shown = (await client.get(f"{V2}/styles/image/{style_id}")).json()["examples"]
    assert [e["id"] for e in shown] == ids[1:] and shown[0]["primary"] is True  # the oldest left
    _error(await client.delete(f"{V2}{path}/{ids[0]}", headers={"apikey": owner}), 404, RC.StyleNotFound)


# --- collections ----------------------------------------------------------------------------------


async def test_collections(
    client: httpx.AsyncClient, horde: Horde, owner: str, other: str, api_key: str
) -> None:
    first = await _style(client, owner)
    second = await _style(client, owner, name="noir", prompt="{p}, film noir###{np}")
    text = await _style(client, owner, "text")
    alias = (await client.get(f"{V2}/styles/image/{first}")).json()["creator"]
    body = {"name": "my looks", "info": "two of mine", "styles": [first, f"{alias}::style::noir"]}
    made = await _post(client, owner, "/collections", body)
    assert made.status_code == 200, made.text
    collection_id = made.json()["id"]
    got = (await client.get(f"{V2}/collections/{collection_id}")).json()
    assert check_body("ResponseModelCollection", got) == []
    assert got["type"] == "image" and got["use_count"] == 0 and got["public"] is True
    assert [s["id"] for s in got["styles"]] == [first, second]
    assert got["styles"][1]["name"] == f"{alias}::style::noir"
    for name in (f"{alias}::collection::my looks", "collection::my looks", "my looks"):
        assert (await client.get(f"{V2}/collection_by_name/{quote(name, safe='')}")).json()[
            "id"
        ] == collection_id
    assert [c["id"] for c in (await client.get(f"{V2}/collections", params={"type": "image"})).json()] == [
        collection_id
    ]
    assert (await client.get(f"{V2}/collections", params={"type": "text"})).json() == []
    # bad input: mixed kinds, an unknown style, someone else's changes
    _error(
        await _post(client, owner, "/collections", {"name": "mixed", "styles": [first, text]}),
        400,
        RC.BadRequest,
    )
    _error(
        await _post(client, owner, "/collections", {"name": "ghost", "styles": ["nobody's"]}),
        404,
        RC.StyleNotFound,
    )
    _error(await _post(client, owner, "/collections", body), 400, RC.BadRequest)  # name taken
    _error(await _post(client, "0000000000", "/collections", body), 403, RC.StylesAnonForbidden)
    assert await _count(horde, StyleCollection) == 1
    path = f"{V2}/collections/{collection_id}"
    _error(await client.patch(path, json={"info": "mine now"}, headers={"apikey": other}), 403, RC.Forbidden)
    _error(await client.delete(path, headers={"apikey": other}), 403, RC.Forbidden)
    _error(await client.patch(path, json={"styles": [text]}, headers={"apikey": owner}), 400, RC.BadRequest)
    changed = await client.patch(path, json={"styles": [second], "public": False}, headers={"apikey": owner})
    assert changed.status_code == 200, changed.text
    after = (await client.get(path)).json()
    assert [s["id"] for s in after["styles"]] == [second] and after["public"] is False
    assert (await client.get(f"{V2}/collections")).json() == []
    _error(await client.get(f"{V2}/collections/not-an-id"), 404, RC.CollectionNotFound)
    assert (await client.delete(path, headers={"apikey": api_key})).status_code == 200
    _error(await client.get(path), 404, RC.CollectionNotFound)
    assert await _count(horde, Style) == 3  # the styles stay


# --- requests with a style ------------------------------------------------------------------------


async def _image_pop(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    body = {
        "name": "style worker",
        "models": ["stable_diffusion"],
        "bridge_agent": REGEN,
        "max_pixels": 4194304,
    }
    response = await _post(client, key, "/generate/pop", body)
    assert response.status_code == 200, response.text
    popped: dict[str, Any] = response.json()
    return popped


async def _kudos(client: httpx.AsyncClient, key: str) -> float:
    found: float = (await client.get(f"{V2}/find_user", headers={"apikey": key})).json()["kudos"]
    return found


async def _use_count(client: httpx.AsyncClient, kind: str, style_id: str) -> int:
    count: int = (await client.get(f"{V2}/styles/{kind}/{style_id}")).json()["use_count"]
    return count


async def test_image_request_with_a_style(
    client: httpx.AsyncClient, horde: Horde, owner: str, api_key: str
) -> None:
    """The reference's flow: a style with an example, a request with it, the worker sees the filled
    prompt, the style's params and model, the result arrives, `use_count` moves once folded."""
    owner_before = await _kudos(client, owner)
    style_id = await _style(client, owner, params={**IMAGE_STYLE["params"], "width": 768})
    assert (
        await _post(client, owner, f"/styles/image/{style_id}/example", {"url": EXAMPLE})
    ).status_code == 200
    request = {
        "prompt": "a lighthouse###fog",
        "params": {"steps": 40, "n": 2, "width": 512, "height": 640, "seed": "7", "sampler_name": "k_lms"},
        "models": ["some other model"],
        "style": style_id,
    }
    made = await _post(client, api_key, "/generate/async", request)
    assert made.status_code == 202, made.text
    popped = await _image_pop(client, api_key)
    payload = popped["payload"]
    assert payload["prompt"] == "a lighthouse, cinematic lighting###fog, blurry"
    assert (
        payload["ddim_steps"] == 12 and payload["sampler_name"] == "k_euler" and payload["cfg_scale"] == 6.5
    )
    assert payload["width"] == 768  # the style's size
    assert payload["height"] == 640  # the style sets no height: the request's stays
    assert payload["seed"] == "7"  # no style sets a seed
    assert popped["model"] == "stable_diffusion"
    assert len(popped["ids"]) == 1  # n stays the request's: two jobs, one popped here
    submitted = await _post(
        client,
        api_key,
        "/generate/submit",
        {"id": popped["id"], "generation": webp_b64(), "state": "ok", "seed": 7},
    )
    assert submitted.status_code == 200, submitted.text
    status = (await client.get(f"{V2}/generate/status/{made.json()['id']}")).json()
    assert status["finished"] == 1 and len(status["generations"]) == 1
    assert await _use_count(client, "image", style_id) == 0  # not until the fold
    assert await _count(horde, StyleUse) == 1
    assert await fold_style_uses(horde) == 1
    assert await _use_count(client, "image", style_id) == 1
    assert await _count(horde, StyleUse) == 0
    await fold_postings(horde)
    assert await _kudos(client, owner) == owner_before + 2  # the owner's share of the activation tax


async def test_text_request_with_a_style(
    client: httpx.AsyncClient, horde: Horde, owner: str, api_key: str
) -> None:
    style_id = await _style(client, owner, "text")
    request = {
        "prompt": "a dragon slept",
        "params": {"max_length": 40, "temperature": 2.0},
        "style": "storyteller",
    }
    made = await _post(client, api_key, "/generate/text/async", request)
    assert made.status_code == 202, made.text
    body = {"name": "style text worker", "models": [TEXT_MODEL], "max_length": 512}
    popped = (await _post(client, api_key, "/generate/text/pop", body)).json()
    assert popped["payload"]["prompt"] == "Once upon a time, a dragon slept"
    assert popped["payload"]["temperature"] == 0.7 and popped["payload"]["top_k"] == 40
    assert popped["payload"]["max_length"] == 40  # no style sets a length
    assert popped["model"] == TEXT_MODEL
    submitted = await _post(
        client, api_key, "/generate/text/submit", {"id": popped["id"], "generation": "and woke"}
    )
    assert submitted.status_code == 200, submitted.text
    assert await fold_style_uses(horde) == 1
    assert await _use_count(client, "text", style_id) == 1


async def test_request_with_a_collection(
    client: httpx.AsyncClient, horde: Horde, owner: str, api_key: str
) -> None:
    first = await _style(client, owner)
    second = await _style(client, owner, name="noir", prompt="{p}, film noir###{np}")
    made = await _post(client, owner, "/collections", {"name": "looks", "styles": [first, second]})
    collection_id = made.json()["id"]
    prompts = set()
    for _ in range(12):
        response = await _post(client, api_key, "/generate/async", {"prompt": "a cat", "style": "looks"})
        assert response.status_code == 202, response.text
        prompts.add((await _image_pop(client, api_key))["payload"]["prompt"])
    assert prompts <= {"a cat, cinematic lighting###, blurry", "a cat, film noir###"}
    assert len(prompts) == 2  # one of its styles at random: both within 12 tries (1 in 2048 to fail)
    assert await fold_style_uses(horde) == 12
    assert await _use_count(client, "image", first) + await _use_count(client, "image", second) == 12
    assert (await client.get(f"{V2}/collections/{collection_id}")).json()["use_count"] == 12


async def test_requests_the_style_refuses(
    client: httpx.AsyncClient, horde: Horde, owner: str, other: str, api_key: str
) -> None:
    private = await _style(client, owner, public=False)
    text = await _style(client, owner, "text")
    private_text = await _style(client, owner, "text", name="private story", public=False)
    deleted = await _style(client, owner, name="gone")
    assert (await client.delete(f"{V2}/styles/image/{deleted}", headers={"apikey": owner})).status_code == 200
    cases = [
        ("/generate/async", {"prompt": "a cat", "style": private}, other, 403, RC.Forbidden),
        ("/generate/async", {"prompt": "a cat", "style": text}, other, 400, RC.BadRequest),
        ("/generate/text/async", {"prompt": "a cat", "style": private_text}, other, 403, RC.Forbidden),
        ("/generate/async", {"prompt": "a cat", "style": deleted}, other, 404, RC.StyleNotFound),
        ("/generate/async", {"prompt": "a cat", "style": "no such style"}, other, 404, RC.StyleNotFound),
    ]
    for path, body, key, status, rc in cases:
        _error(await _post(client, key, path, body), status, rc)
    assert (await client.get(f"{V2}/generate/status/00000000-0000-0000-0000-000000000000")).status_code == 404
    assert await _count(horde, StyleUse) == 0
    # its owner may use a private style; a dry run prices it without counting a use
    assert (
        await _post(client, owner, "/generate/async", {"prompt": "a cat", "style": private})
    ).status_code == 202
    dry = await _post(
        client, owner, "/generate/async", {"prompt": "a cat", "style": private, "dry_run": True}
    )
    assert dry.status_code == 200 and dry.json()["kudos"] > 0
    assert await _count(horde, StyleUse) == 1


async def test_a_styles_shared_key_pays_for_requests_made_with_it(
    client: httpx.AsyncClient, horde: Horde, owner: str, api_key: str
) -> None:
    """SEMANTICS 8: the style's key (its owner's) pays, and its per-job caps do not apply; an emptied
    key without enough left refuses the request before anything is queued."""
    made_key = await client.put(
        f"{V2}/sharedkeys", json={"name": "style key", "kudos": 1000, "max_image_steps": 5},
        headers={"apikey": owner},
    )  # fmt: skip
    assert made_key.status_code == 200, made_key.text
    key_id = made_key.json()["id"]
    style_id = await _style(client, owner, name="paid style", sharedkey=key_id)  # 12 steps > the key's 5
    requester = await _user(client, api_key, "style_requester")
    await fold_postings(horde)
    before = await _kudos(client, requester)
    made = await _post(client, requester, "/generate/async", {"prompt": "a cat", "style": style_id})
    assert made.status_code == 202, made.text
    await fold_shared_key_charges(horde)
    assert (await client.get(f"{V2}/sharedkeys/{key_id}")).json()["utilized"] > 0
    await fold_postings(horde)
    assert await _kudos(client, requester) == before  # not even the activation tax: the key's owner paid
    emptied = await client.patch(f"{V2}/sharedkeys/{key_id}", json={"kudos": 1}, headers={"apikey": owner})
    assert emptied.status_code == 200, emptied.text
    await fold_shared_key_charges(horde)
    refused = await _post(client, requester, "/generate/async", {"prompt": "a dog", "style": style_id})
    _error(refused, 403, RC.SharedKeyInsufficientKudos)
