"""The swagger checker finds what it promises to find (it guards other teams' API tests)."""

from __future__ import annotations

from typing import Any

from .swagger import check_body, check_response, definition, flatten, requires_swagger

pytestmark = requires_swagger

GENERATION = {
    "worker_id": "00000000-0000-0000-0000-000000000000",
    "worker_name": "w",
    "model": "stable_diffusion",
    "state": "ok",
    "img": "https://r2/x.webp",
    "seed": "42",
    "id": "g1",
    "censored": False,
    "gen_metadata": [{"type": "censorship", "value": "nsfw"}],
}
STATUS: dict[str, Any] = {
    "finished": 1,
    "processing": 0,
    "restarted": 0,
    "waiting": 0,
    "done": True,
    "faulted": False,
    "wait_time": 0,
    "queue_position": 0,
    "kudos": 12.5,
    "is_possible": True,
    "generations": [GENERATION],
    "shared": False,
}


def test_a_valid_body_has_no_problems() -> None:
    assert check_body("RequestStatusStable", STATUS) == []


def test_allof_is_merged() -> None:
    props = flatten(definition("RequestStatusStable"))["properties"]
    assert {"finished", "is_possible", "generations", "shared"} <= set(props)


def test_unknown_key() -> None:
    assert check_body("RequestStatusStable", {**STATUS, "extra": 1}) == ["$: unexpected key 'extra'"]


def test_nested_wrong_type_is_located() -> None:
    body = {**STATUS, "generations": [{**GENERATION, "seed": 42}]}
    assert check_body("RequestStatusStable", body) == ["$.generations[0].seed: expected string, got integer"]


def test_integers_are_strict() -> None:
    assert check_body("RequestStatusStable", {**STATUS, "wait_time": 1.0}) != []
    assert check_body("RequestStatusStable", {**STATUS, "finished": True}) != []
    check = {k: v for k, v in STATUS.items() if k not in ("generations", "shared")}
    assert check_body("RequestStatusCheck", {**check, "kudos": 3}) == []  # an integer is a number


def test_enums() -> None:
    body = {**STATUS, "generations": [{**GENERATION, "state": "faulted"}]}
    assert check_body("RequestStatusStable", body) != []
    assert check_body("RequestStatusStable", body, enums=False) == []


def test_required_and_null() -> None:
    assert check_body("RequestError", {"message": "x"}) == ["$: required key 'rc' is missing"]
    assert check_body("RequestError", {"message": None, "rc": "BadRequest"}) == []
    assert check_body("RequestError", {"message": "x", "rc": None}) == ["$: required key 'rc' is null"]


def test_wildcards_and_raw_fields() -> None:
    body = {"state": "done", "forms": [{"form": "caption", "state": "done", "result": {"caption": "a cat"}}]}
    assert check_body("InterrogationStatus", body) == []
    assert check_body("ModelInterrogationFormStable", {"name": "caption", "payload": {"k": 1}}) == [
        "$.payload.k: expected string, got integer"
    ]


def test_lists_of_definitions() -> None:
    assert check_body("ActiveModelLite[]", [{"name": "m", "count": 1}]) == []
    assert check_body("ActiveModelLite[]", [{"name": "m", "count": "1"}]) == [
        "$[0].count: expected integer, got string"
    ]


def test_check_response_resolves_concrete_paths() -> None:
    workers = [{"type": "image", "name": "w", "id": "i", "online": True, "bridge_agent": "a:1:u"}]
    assert check_response("GET", "/api/v2/workers?type=image", 200, workers) == []
    assert check_response("GET", "/api/v2/workers/abc", 200, workers) == ["$: expected object, got array"]
    assert check_response("GET", "/api/v2/workers/name/w", 200, workers[0]) == []
    assert check_response("GET", "/api/v2/generate/check/x", 418, {}) != []
    assert check_response("GET", "/api/v2/nowhere", 200, {}) != []
