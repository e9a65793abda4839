"""`/filters` over the API, and the prompt pipeline on image requests (SEMANTICS.md 1.10 and 8)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from horde.server.filters.cache import FilterCache
from horde.server.filters.prompt import PROTECTIVE_TERMS
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from horde.server.users import service as users
from tests.helpers import V2, row_counts

REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"
FILTERS = [
    {"regex": r"\bchild\b", "filter_type": 10, "replacement": "adult", "description": "ages"},
    {"regex": r"\bnude\b", "filter_type": 20},
]


async def _user(
    client: httpx.AsyncClient, name: str, mod_key: str | None = None, **roles: Any
) -> dict[str, Any]:
    body = {"username": name, "oauth_id": f"oauth-{name}", "moderator": False, "trusted": False}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    if roles:
        assert mod_key is not None
        changed = await client.put(f"{V2}/users/{user['user_id']}", json=roles, headers={"apikey": mod_key})
        assert changed.status_code == 200, changed.text
    return user


def _error(response: httpx.Response, status: int, rc: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["rc"] == rc and response.json()["message"]


async def _add_filters(client: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    added = []
    for body in FILTERS:
        response = await client.put(f"{V2}/filters", json=body, headers={"apikey": key})
        assert response.status_code == 200, response.text
        added.append(response.json())
    return added


async def _image(client: httpx.AsyncClient, key: str, prompt: str, **fields: Any) -> httpx.Response:
    body = {"prompt": prompt, "params": {"steps": 10}, "models": ["stable_diffusion"], **fields}
    return await client.post(f"{V2}/generate/async", json=body, headers={"apikey": key})


async def _popped_prompt(client: httpx.AsyncClient, key: str, models: list[str]) -> dict[str, Any]:
    body = {"name": "filter worker", "models": models, "bridge_agent": REGEN, "max_pixels": 1024 * 1024}
    response = await client.post(f"{V2}/generate/pop", json=body, headers={"apikey": key})
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()["payload"]
    assert payload, response.json()
    return payload


async def test_filters_crud(client: httpx.AsyncClient, api_key: str) -> None:
    head = {"apikey": api_key}
    first, second = await _add_filters(client, api_key)
    assert first["regex"] == r"\bchild\b" and first["filter_type"] == 10 and first["replacement"] == "adult"
    assert first["user"].startswith("test_user#") and first["description"] == "ages"
    again = await client.put(f"{V2}/filters", json=FILTERS[0], headers=head)
    assert again.status_code == 200 and again.json()["id"] == first["id"]  # idempotent on (regex, type)
    listed = (await client.get(f"{V2}/filters", headers=head)).json()
    assert [f["id"] for f in listed] == [first["id"], second["id"]]
    assert [f["id"] for f in (await client.get(f"{V2}/filters?filter_type=20", headers=head)).json()] == [
        second["id"]
    ]
    assert [f["id"] for f in (await client.get(f"{V2}/filters?contains=nud", headers=head)).json()] == [
        second["id"]
    ]
    assert (await client.get(f"{V2}/filters/{first['id']}", headers=head)).json() == first
    patched = await client.patch(f"{V2}/filters/{first['id']}", json={"description": "new"}, headers=head)
    assert patched.status_code == 200 and patched.json()["description"] == "new"
    _error(
        await client.patch(f"{V2}/filters/{first['id']}", json={}, headers=head), 400, "NoFilterModSelected"
    )
    regexes = (await client.get(f"{V2}/filters/regex", headers=head)).json()
    assert regexes == [
        {"filter_type": 10, "regex": r"(?:\bchild\b)"},
        {"filter_type": 20, "regex": r"(?:\bnude\b)"},
    ]
    assert (await client.get(f"{V2}/filters/regex?filter_type=20", headers=head)).json() == regexes[1:]
    deleted = await client.delete(f"{V2}/filters/{first['id']}", headers=head)
    assert deleted.status_code == 200 and deleted.json() == {"message": "OK"}
    _error(await client.get(f"{V2}/filters/{first['id']}", headers=head), 404, "FilterNotFound")
    _error(await client.delete(f"{V2}/filters/{first['id']}", headers=head), 404, "FilterNotFound")
    _error(await client.get(f"{V2}/filters/not-a-uuid", headers=head), 404, "FilterNotFound")
    _error(await client.patch(f"{V2}/filters/{first['id']}", json={"description": "x"}, headers=head), 404,
           "FilterNotFound")  # fmt: skip


async def test_prompt_check(client: httpx.AsyncClient, api_key: str) -> None:
    await _add_filters(client, api_key)
    head = {"apikey": api_key}
    rated = (
        await client.post(f"{V2}/filters", json={"prompt": "a (c.h.i.l.d:1.2), n u d e"}, headers=head)
    ).json()
    assert rated["suspicion"] == "2" and set(rated["matches"]) >= {"child", "nude"}
    one = (
        await client.post(f"{V2}/filters", json={"prompt": "nude", "filter_type": 20}, headers=head)
    ).json()
    assert one == {"suspicion": "1", "matches": ["nude"]}
    clean = (await client.post(f"{V2}/filters", json={"prompt": "a lighthouse"}, headers=head)).json()
    assert clean == {"suspicion": "0", "matches": []}


@pytest.mark.parametrize("regex", ["(unclosed", "[z-a]", r"(a|aa)+$"])
async def test_a_bad_regex_is_refused_and_nothing_written(
    client: httpx.AsyncClient, api_key: str, regex: str
) -> None:
    head = {"apikey": api_key}
    _error(await client.put(f"{V2}/filters", json={"regex": regex, "filter_type": 10}, headers=head), 400,
           "BadRequest")  # fmt: skip
    first, _ = await _add_filters(client, api_key)
    _error(await client.patch(f"{V2}/filters/{first['id']}", json={"regex": regex}, headers=head), 400,
           "BadRequest")  # fmt: skip
    assert [f["regex"] for f in (await client.get(f"{V2}/filters", headers=head)).json()] == [
        r"\bchild\b", r"\bnude\b"
    ]  # fmt: skip
    out_of_range = await client.put(f"{V2}/filters", json={"regex": "x", "filter_type": 30}, headers=head)
    assert out_of_range.status_code == 400


async def test_plain_users_call_no_filter_route(client: httpx.AsyncClient, api_key: str) -> None:
    first, _ = await _add_filters(client, api_key)
    plain = await _user(client, "plain")
    calls = [
        ("GET", "/filters", None), ("PUT", "/filters", {"regex": "cat", "filter_type": 10}),
        ("POST", "/filters", {"prompt": "a child"}), ("GET", "/filters/regex", None),
        ("GET", f"/filters/{first['id']}", None), ("PATCH", f"/filters/{first['id']}", {"regex": "dog"}),
        ("DELETE", f"/filters/{first['id']}", None),
    ]  # fmt: skip
    for key in (plain["api_key"], "0000000000"):
        for method, path, body in calls:
            response = await client.request(method, f"{V2}{path}", json=body, headers={"apikey": key})
            _error(response, 403, "NotModerator")
    for method, path, body in calls:
        assert (await client.request(method, f"{V2}{path}", json=body)).status_code == 400  # no key
    listed = (await client.get(f"{V2}/filters", headers={"apikey": api_key})).json()
    assert [(f["regex"], f.get("description")) for f in listed] == [
        (r"\bchild\b", "ages"),
        (r"\bnude\b", None),
    ]


async def test_a_suspicious_prompt_is_sanitised(client: httpx.AsyncClient, api_key: str) -> None:
    await _add_filters(client, api_key)
    plain = await _user(client, "requester")
    response = await _image(client, plain["api_key"], "a (c h i l d:1.2) on a beach, nude###blurry")
    assert response.status_code == 202, response.text
    payload = await _popped_prompt(client, api_key, ["stable_diffusion"])
    positive, negative = payload["prompt"].split("###")
    assert "adult" in positive and "c h i l d" not in positive and "child" not in positive
    assert negative == f"{PROTECTIVE_TERMS}, blurry"


async def test_a_clean_prompt_is_untouched(client: httpx.AsyncClient, api_key: str) -> None:
    await _add_filters(client, api_key)
    assert (await _image(client, api_key, "a child reading, (watercolour:1.1)")).status_code == 202
    assert (await _popped_prompt(client, api_key, ["stable_diffusion"]))["prompt"] == (
        "a child reading, (watercolour:1.1)"  # one group only: not suspicious enough to change
    )


async def test_listing_with_impossible_queries_finds_nothing(client: httpx.AsyncClient, api_key: str) -> None:
    """Found by schemathesis: a filter_type past PostgreSQL's integer range was a 500."""
    await _add_filters(client, api_key)
    for params in ({"filter_type": 100514574195764736}, {"filter_type": 9}):
        response = await client.get(f"{V2}/filters", params=params, headers={"apikey": api_key})
        assert (response.status_code, response.json()) == (200, []), params


@pytest.mark.parametrize(
    ("prompt", "fields"),
    [
        ("a child, nude", {"replacement_filter": False}),  # replacement off: refused
        ("a сhild, n.u.d.e", {"replacement_filter": False}),  # evasions too
        ("child, nude", {}),  # nothing remains once sanitised
    ],
)
async def test_a_corrupt_prompt_is_refused(
    client: httpx.AsyncClient, horde: Horde, api_key: str, prompt: str, fields: dict[str, Any]
) -> None:
    added = [(r"\bchild\b", 10), (r"\bnude\b", 20), (r"\bnude\b", 10)]  # type 10: replaced by ""
    for regex, filter_type in added:
        body = {"regex": regex, "filter_type": filter_type}
        assert (await client.put(f"{V2}/filters", json=body, headers={"apikey": api_key})).status_code == 200
    plain = await _user(client, "corrupt")
    seen: list[str] = []

    async def hook(ip: str) -> None:
        seen.append(ip)

    horde.corrupt_prompt_hooks.append(hook)
    before = await row_counts(horde)
    _error(await _image(client, plain["api_key"], prompt, **fields), 400, "CorruptPrompt")
    # the refusal times the address out (SEMANTICS 5: 9 minutes for a first offence), so a retry of
    # the same prompt is not even screened
    _error(await _image(client, plain["api_key"], prompt, **fields), 403, "TimeoutIP")
    assert await row_counts(horde) == before  # nothing queued
    assert seen == ["127.0.0.1"]
    async with horde.db.autocommit() as conn:
        assert await users.suspicion_of(conn, int(plain["user_id"])) == 1  # CORRUPT_PROMPT counts once


async def test_flagged_users_and_nsfw_models_get_the_adult_pass(
    client: httpx.AsyncClient, horde: Horde, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flagged = await _user(client, "flagged", api_key, flagged=True)
    assert (await _image(client, flagged["api_key"], "a young woman, portrait")).status_code == 202
    payload = await _popped_prompt(client, api_key, ["stable_diffusion"])
    assert payload["prompt"] == f"a adult woman, portrait###{PROTECTIVE_TERMS}"  # flagged: always sanitised
    entry = horde.catalog.image.get("Hentai Diffusion", {})  # flagged NSFW in the model reference
    monkeypatch.setitem(horde.catalog.image, "Hentai Diffusion", {**entry, "nsfw": True})
    response = await _image(client, api_key, "a g i r l, portrait###ugly", models=["Hentai Diffusion"])
    assert response.status_code == 202, response.text
    payload = await _popped_prompt(client, api_key, ["Hentai Diffusion"])
    assert payload["prompt"] == "a adult portrait###ugly"
    _error(await _image(client, api_key, "girl", models=["Hentai Diffusion"]), 400, "CorruptPrompt")


async def test_text_prompts_are_not_screened_by_default(client: httpx.AsyncClient, api_key: str) -> None:
    await _add_filters(client, api_key)
    request = {"prompt": "a child, nude", "params": {"max_length": 32}}
    accepted = await client.post(f"{V2}/generate/text/async", json=request, headers={"apikey": api_key})
    assert accepted.status_code == 202, accepted.text


async def test_education_accounts_get_safe_requests(client: httpx.AsyncClient, api_key: str) -> None:
    school = await _user(client, "school", api_key, education=True)
    response = await _image(client, school["api_key"], "a lighthouse", nsfw=True, censor_nsfw=False)
    assert response.status_code == 202, response.text
    payload = await _popped_prompt(client, api_key, ["stable_diffusion"])  # a trusted moderator's worker
    assert payload.get("use_nsfw_censor") is True


async def test_every_node_follows_a_change(client: httpx.AsyncClient, horde: Horde, api_key: str) -> None:
    clock = FakeClock()
    other = FilterCache(clock, interval=1.0)  # another node's cache, on the same database
    assert (await other.current(horde.db)).sources == {}
    await _add_filters(client, api_key)
    assert set((await horde.filters.current(horde.db)).sources) == {10, 20}  # the writing node: at once
    assert (await other.current(horde.db)).sources == {}  # checked less than a second ago
    clock.advance(1.01)
    assert set((await other.current(horde.db)).sources) == {10, 20}
    first = (await client.get(f"{V2}/filters?filter_type=10", headers={"apikey": api_key})).json()[0]
    await client.delete(f"{V2}/filters/{first['id']}", headers={"apikey": api_key})
    other.invalidate()  # what a Redis message from the writing node does
    assert set((await other.current(horde.db)).sources) == {20}
