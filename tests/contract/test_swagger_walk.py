"""The swagger walk: every operation of the reference swagger exists here, or is pending by name.

For each of the reference's operations (`tests/contract/swagger.py` reads the spec), either
* it is in `CALLS`: its route exists on our app (same method, same path template) and a valid request
  sent as the right role gets an answer whose fields and types match the swagger's definition for that
  status (`check_response`); or
* it is in `PENDING` (not built yet): our app must have no such route. The test fails as soon as a
  pending operation gets a route, so the list only shrinks; move the operation to `CALLS` then.

Calls run in `CALLS`' order against one horde (the image request is made, popped, submitted, rated,
then another one cancelled...), as the caller the Auth column of SEMANTICS.md 1 names; the `api_key`
fixture is a trusted moderator (and here an admin), who owns the workers it pops with.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from horde.server.app import create_app
from horde.server.state import Horde
from tests.contract.swagger import check_body, check_response, requires_swagger, spec
from tests.helpers import V2, png_b64, webp_b64

pytestmark = requires_swagger

REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"
TEXT_MODEL = "koboldcpp/walk-model"

# Not built yet (the accounts and moderation issues), by operationId.
PENDING = frozenset({
})  # fmt: skip


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # the swagger's, e.g. /v2/workers/{worker_id}
    operation_id: str


def operations() -> dict[str, Operation]:
    """The swagger's operations by (method, template); `get_single_image_style_by_name` is the id of
    both by-name style lookups in the swagger, so ids are not unique keys."""
    found = {}
    for template, item in spec()["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                op = Operation(method.upper(), template, operation["operationId"])
                found[f"{op.method} {template}"] = op
    return found


def _shape(path: str) -> str:
    """A path template with its parameter names erased (`{}`), `:path` converters included."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def our_routes(horde: Horde) -> set[str]:
    app = create_app(horde.settings, horde=horde)
    return {
        f"{method} {_shape(context.path)}"
        for context in iter_route_contexts(app.routes)
        for method in context.methods or ()
    }


def _ours(op: Operation) -> str:
    return f"{op.method} {_shape('/api' + op.template)}"


@dataclass
class Walk:
    """The client, the caller's key, and the ids earlier calls made."""

    client: httpx.AsyncClient
    key: str
    ids: dict[str, Any] = field(default_factory=dict)

    async def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {"apikey": self.key}
        return await self.client.request(method, f"{V2}{path}", json=body, headers=headers, **kwargs)


Call = Callable[[Walk], Awaitable[httpx.Response]]
IMAGE = {"prompt": "a lighthouse", "params": {"steps": 10, "n": 1}, "models": ["stable_diffusion"]}
TEXT = {"prompt": "Once upon a time", "params": {"max_length": 32}, "models": [TEXT_MODEL]}
IMAGE_POP = {"name": "walk image", "models": ["stable_diffusion"], "bridge_agent": REGEN, "amount": 1}
TEXT_POP = {"name": "walk text", "models": [TEXT_MODEL], "bridge_agent": "KoboldAI Client:1:x"}
ALCHEMY = {"forms": [{"name": "caption"}], "source_image": png_b64()}
ALCHEMY_POP = {"name": "walk alchemy", "forms": ["caption"], "bridge_agent": "horde-worker:0.1.0:x"}


def _request(path: str, body: dict[str, Any], name: str) -> Call:
    async def call(walk: Walk) -> httpx.Response:
        response = await walk.call("POST", path, body)
        if response.is_success:
            walk.ids[name] = response.json()["id"]
        return response

    return call


def _pop(path: str, body: dict[str, Any], name: str) -> Call:
    async def call(walk: Walk) -> httpx.Response:
        response = await walk.call("POST", path, body)
        if response.is_success:
            popped = response.json()
            walk.ids[name] = popped["forms"][0]["id"] if "forms" in popped else popped["id"]
        return response

    return call


def _get(path: str, **params: Any) -> Call:
    return lambda walk: walk.call("GET", path.format(**walk.ids), params=params or None)


def _with(method: str, path: str, body: Any) -> Call:
    return lambda walk: walk.call(method, path.format(**walk.ids), body)


async def _worker_id(walk: Walk) -> str:
    found = await walk.call("GET", f"/workers/name/{IMAGE_POP['name']}")
    return str(found.json()["id"])


async def _get_worker(walk: Walk) -> httpx.Response:
    return await walk.call("GET", f"/workers/{await _worker_id(walk)}")


async def _put_worker(walk: Walk) -> httpx.Response:
    return await walk.call("PUT", f"/workers/{await _worker_id(walk)}", {"info": "walks the swagger"})


async def _delete_worker(walk: Walk) -> httpx.Response:
    await walk.call("POST", "/generate/pop", {**IMAGE_POP, "name": "walk spare"})
    found = await walk.call("GET", "/workers/name/walk spare")
    return await walk.call("DELETE", f"/workers/{found.json()['id']}")


async def _user(walk: Walk) -> dict[str, Any]:
    found: dict[str, Any] = (await walk.call("GET", "/find_user")).json()
    return found


async def _get_user(walk: Walk) -> httpx.Response:
    return await walk.call("GET", f"/users/{(await _user(walk))['id']}")


async def _put_user(walk: Walk) -> httpx.Response:
    return await walk.call("PUT", f"/users/{(await _user(walk))['id']}", {"contact": "walk@example.org"})


async def _delete_user(walk: Walk) -> httpx.Response:
    body = {"username": "walk_doomed", "oauth_id": "walk_doomed", "moderator": False, "trusted": False}
    made = (await walk.client.post(f"{V2}/dev/test-user", json=body)).json()
    return await walk.call("DELETE", f"/users/{made['user_id']}")


def _cancel(make: str, status: str, body: dict[str, Any]) -> Call:
    """Make a request and cancel it."""

    async def call(walk: Walk) -> httpx.Response:
        made = await walk.call("POST", make, body)
        return await walk.call("DELETE", f"{status}/{made.json()['id']}")

    return call


async def _other(walk: Walk) -> str:
    """The alias of a second, plain user (made once)."""
    if "other" not in walk.ids:
        body = {"username": "walk_other", "oauth_id": "walk_other", "moderator": False, "trusted": False}
        made = (await walk.client.post(f"{V2}/dev/test-user", json=body)).json()
        walk.ids["other"] = f"walk_other#{made['user_id']}"
    return str(walk.ids["other"])


async def _transfer(walk: Walk) -> httpx.Response:
    return await walk.call("POST", "/kudos/transfer", {"username": await _other(walk), "amount": 1})


async def _award(walk: Walk) -> httpx.Response:
    return await walk.call("POST", "/kudos/award", {"username": await _other(walk), "amount": 1})


def _create(path: str, name: str, body: Callable[[Walk], Awaitable[dict[str, Any]]]) -> Call:
    """POST `body` to `path`; the answer's id is kept as `name` for the calls after it."""

    async def call(walk: Walk) -> httpx.Response:
        response = await walk.call("POST", path.format(**walk.ids), await body(walk))
        if response.is_success:
            walk.ids[name] = response.json()["id"]
        return response

    return call


def _put_filter(walk: Walk) -> Awaitable[httpx.Response]:
    return _keep(walk, "filter", walk.call("PUT", "/filters", {"regex": r"\bwalkword\b", "filter_type": 20}))


async def _keep(walk: Walk, name: str, answer: Awaitable[httpx.Response]) -> httpx.Response:
    response = await answer
    if response.is_success:
        walk.ids[name] = response.json()["id"]
    return response


def _block_worker(method: str, body: dict[str, Any] | None) -> Call:
    async def call(walk: Walk) -> httpx.Response:
        return await walk.call(method, f"/operations/block_worker_ipaddr/{await _worker_id(walk)}", body)

    return call


async def _team(_walk: Walk) -> dict[str, Any]:
    return {"name": "walk team", "info": "walks the swagger"}


async def _message(walk: Walk) -> dict[str, Any]:
    return {"worker_id": await _worker_id(walk), "message": "the walk says hello", "expiry": 12}


IMAGE_STYLE = {
    "name": "walk style", "info": "walks the swagger in style", "prompt": "{p}, walked###{np}",
    "params": {"steps": 10}, "models": ["stable_diffusion"], "tags": ["walk"],
}  # fmt: skip
TEXT_STYLE = {"name": "walk text style", "prompt": "Walking: {p}", "models": [TEXT_MODEL]}


async def _image_style(_walk: Walk) -> dict[str, Any]:
    return IMAGE_STYLE


async def _text_style(_walk: Walk) -> dict[str, Any]:
    return TEXT_STYLE


async def _example(_walk: Walk) -> dict[str, Any]:
    return {"url": "https://example.org/walk.webp"}


async def _collection(walk: Walk) -> dict[str, Any]:
    return {"name": "walk collection", "styles": [walk.ids["image_style"]]}


async def _by_name(walk: Walk, route: str, name: str) -> httpx.Response:
    """A name in its `alias#id::style::name` form ("#" escaped: it would start a URL's fragment)."""
    alias = (await _user(walk))["username"]
    return await walk.call("GET", f"/{route}/{quote(alias + '::' + name, safe='')}")


def _image_result(walk: Walk) -> dict[str, Any]:
    return {"id": walk.ids["image_job"], "generation": webp_b64(), "state": "ok", "seed": 1}


# operation (method and swagger template) -> the call, in the order they run
CALLS: dict[str, Call] = {
    "POST /v2/generate/async": _request("/generate/async", IMAGE, "image"),
    "GET /v2/generate/check/{id}": _get("/generate/check/{image}"),
    "POST /v2/generate/pop": _pop("/generate/pop", IMAGE_POP, "image_job"),
    "POST /v2/generate/submit": lambda w: w.call("POST", "/generate/submit", _image_result(w)),
    "GET /v2/generate/status/{id}": _get("/generate/status/{image}"),
    "POST /v2/generate/rate/{id}": _with("POST", "/generate/rate/{image}", {"best": str(uuid.uuid4())}),
    "DELETE /v2/generate/status/{id}": _cancel("/generate/async", "/generate/status", IMAGE),
    "POST /v2/generate/text/async": _request("/generate/text/async", TEXT, "text"),
    "POST /v2/generate/text/pop": _pop("/generate/text/pop", TEXT_POP, "text_job"),
    "POST /v2/generate/text/submit": lambda w: w.call(
        "POST", "/generate/text/submit", {"id": w.ids["text_job"], "generation": "there was", "state": "ok"}
    ),
    "GET /v2/generate/text/status/{id}": _get("/generate/text/status/{text}"),
    "DELETE /v2/generate/text/status/{id}": _cancel("/generate/text/async", "/generate/text/status", TEXT),
    "POST /v2/interrogate/async": _request("/interrogate/async", ALCHEMY, "alchemy"),
    "POST /v2/interrogate/pop": _pop("/interrogate/pop", ALCHEMY_POP, "alchemy_job"),
    "POST /v2/interrogate/submit": lambda w: w.call(
        "POST", "/interrogate/submit", {"id": w.ids["alchemy_job"], "result": {"caption": "a"}, "state": "ok"}
    ),
    "GET /v2/interrogate/status/{id}": _get("/interrogate/status/{alchemy}"),
    "DELETE /v2/interrogate/status/{id}": _cancel("/interrogate/async", "/interrogate/status", ALCHEMY),
    "GET /v2/workers": _get("/workers"),
    "GET /v2/workers/{worker_id}": _get_worker,
    "GET /v2/workers/name/{worker_name}": _get(f"/workers/name/{IMAGE_POP['name']}"),
    "PUT /v2/workers/{worker_id}": _put_worker,
    "DELETE /v2/workers/{worker_id}": _delete_worker,
    "POST /v2/workers/messages": _create("/workers/messages", "message", _message),
    "GET /v2/workers/messages": _get("/workers/messages"),
    "GET /v2/workers/messages/{message_id}": _get("/workers/messages/{message}"),
    "DELETE /v2/workers/messages/{message_id}": _with("DELETE", "/workers/messages/{message}", None),
    "POST /v2/teams": _create("/teams", "team", _team),
    "GET /v2/teams": _get("/teams"),
    "GET /v2/teams/{team_id}": _get("/teams/{team}"),
    "PATCH /v2/teams/{team_id}": _with("PATCH", "/teams/{team}", {"info": "patched by the walk"}),
    "DELETE /v2/teams/{team_id}": _with("DELETE", "/teams/{team}", None),
    "PUT /v2/sharedkeys": lambda w: _keep(w, "sharedkey", w.call("PUT", "/sharedkeys", {"name": "walk key"})),
    "GET /v2/sharedkeys/{sharedkey_id}": _get("/sharedkeys/{sharedkey}"),
    "PATCH /v2/sharedkeys/{sharedkey_id}": _with("PATCH", "/sharedkeys/{sharedkey}", {"kudos": 100}),
    "DELETE /v2/sharedkeys/{sharedkey_id}": _with("DELETE", "/sharedkeys/{sharedkey}", None),
    "GET /v2/stats/img/totals": _get("/stats/img/totals"),
    "GET /v2/stats/img/models": _get("/stats/img/models"),
    "GET /v2/stats/text/totals": _get("/stats/text/totals"),
    "GET /v2/stats/text/models": _get("/stats/text/models"),
    "POST /v2/styles/image": _create("/styles/image", "image_style", _image_style),
    "GET /v2/styles/image": _get("/styles/image", tag="walk"),
    "GET /v2/styles/image/{style_id}": _get("/styles/image/{image_style}"),
    "GET /v2/styles/image_by_name/{style_name}": lambda w: _by_name(
        w, "styles/image_by_name", "style::walk style"
    ),
    "PATCH /v2/styles/image/{style_id}": _with("PATCH", "/styles/image/{image_style}", {"nsfw": False}),
    "POST /v2/styles/image/{style_id}/example": _create(
        "/styles/image/{image_style}/example", "example", _example
    ),
    "PATCH /v2/styles/image/{style_id}/example/{example_id}": _with(
        "PATCH", "/styles/image/{image_style}/example/{example}", {"url": "https://example.org/walk2.webp"}
    ),
    "DELETE /v2/styles/image/{style_id}/example/{example_id}": _with(
        "DELETE", "/styles/image/{image_style}/example/{example}", None
    ),
    "POST /v2/styles/text": _create("/styles/text", "text_style", _text_style),
    "GET /v2/styles/text": _get("/styles/text"),
    "GET /v2/styles/text/{style_id}": _get("/styles/text/{text_style}"),
    "GET /v2/styles/text_by_name/{style_name}": lambda w: _by_name(
        w, "styles/text_by_name", "walk text style"
    ),
    "PATCH /v2/styles/text/{style_id}": _with("PATCH", "/styles/text/{text_style}", {"public": False}),
    "POST /v2/collections": _create("/collections", "collection", _collection),
    "GET /v2/collections": _get("/collections", type="image"),
    "GET /v2/collections/{collection_id}": _get("/collections/{collection}"),
    "GET /v2/collection_by_name/{collection_name}": lambda w: _by_name(
        w, "collection_by_name", "collection::walk collection"
    ),
    "PATCH /v2/collections/{collection_id}": _with("PATCH", "/collections/{collection}", {"info": "walked"}),
    "DELETE /v2/collections/{collection_id}": _with("DELETE", "/collections/{collection}", None),
    "DELETE /v2/styles/text/{style_id}": _with("DELETE", "/styles/text/{text_style}", None),
    "DELETE /v2/styles/image/{style_id}": _with("DELETE", "/styles/image/{image_style}", None),
    "GET /v2/find_user": _get("/find_user"),
    "GET /v2/users": _get("/users"),
    "GET /v2/users/{user_id}": _get_user,
    "PUT /v2/users/{user_id}": _put_user,
    "DELETE /v2/users/{user_id}": _delete_user,
    "POST /v2/kudos/transfer": _transfer,
    "POST /v2/kudos/award": _award,
    "PUT /v2/filters": _put_filter,
    "GET /v2/filters": _get("/filters"),
    "POST /v2/filters": _with("POST", "/filters", {"prompt": "a walkword in a prompt"}),
    "GET /v2/filters/regex": _get("/filters/regex"),
    "GET /v2/filters/{filter_id}": _get("/filters/{filter}"),
    "PATCH /v2/filters/{filter_id}": _with("PATCH", "/filters/{filter}", {"description": "the walk's"}),
    "DELETE /v2/filters/{filter_id}": _with("DELETE", "/filters/{filter}", None),
    "GET /v2/status/heartbeat": _get("/status/heartbeat"),
    "GET /v2/status/models": _get("/status/models"),
    "GET /v2/status/models/{model_name}": _get("/status/models/stable_diffusion"),
    "GET /v2/status/performance": _get("/status/performance"),
    "GET /v2/status/modes": _get("/status/modes"),
    "GET /v2/status/news": _get("/status/news"),
    "GET /v2/documents/terms": _get("/documents/terms", format="markdown"),
    "GET /v2/documents/privacy": _get("/documents/privacy"),
    "GET /v2/documents/sponsors": _get("/documents/sponsors", format="html"),
    "PUT /v2/status/modes": _with("PUT", "/status/modes", {"raid_mode": False}),
    # a documentation address, so no caller of the walk is timed out; the block is lifted at once
    "POST /v2/operations/ipaddr": _with("POST", "/operations/ipaddr", {"ipaddr": "203.0.113.7", "hours": 1}),
    "GET /v2/operations/ipaddr": _get("/operations/ipaddr"),
    "GET /v2/operations/ipaddr/{ipaddr}": _get("/operations/ipaddr/203.0.113.7"),
    "DELETE /v2/operations/ipaddr": _with("DELETE", "/operations/ipaddr", {"ipaddr": "203.0.113.7"}),
    "PUT /v2/operations/block_worker_ipaddr/{worker_id}": _block_worker("PUT", {"days": 1}),
    "DELETE /v2/operations/block_worker_ipaddr/{worker_id}": _block_worker("DELETE", None),
}  # fmt: skip

# where the swagger and SEMANTICS.md differ, SEMANTICS.md wins (it describes what the reference sends)
SHAPES = {
    "GET /v2/users": "UserDetails[]",  # the swagger says one UserDetails; the reference sends a page
    "GET /v2/filters/{filter_id}": "FilterDetails",  # the swagger says a list; the reference sends one
    "PUT /v2/filters": "FilterDetails",  # the swagger says 201; the reference answers 200 (SEMANTICS 1.10)
}

# keys we send beyond the swagger's definition, each with its reason in tests/contract/_registry.py
_MESSAGE_EXTRAS = frozenset({"id", "expires"})  # WorkerMessageDetails: the swagger reuses the input model
_TEAM_EXTRAS = frozenset({"contributions"})  # TeamDetails: the reference sends it (SEMANTICS 1.6)
EXTRA_KEYS = {
    "POST /v2/workers/messages": _MESSAGE_EXTRAS, "GET /v2/workers/messages": _MESSAGE_EXTRAS,
    "GET /v2/workers/messages/{message_id}": _MESSAGE_EXTRAS,
    "GET /v2/teams": _TEAM_EXTRAS, "GET /v2/teams/{team_id}": _TEAM_EXTRAS,
}  # fmt: skip

# answers that are not a success by design (the reference's own answer to a valid request)
EXPECTED_STATUS = {"POST /v2/generate/rate/{id}": 400}  # AestheticsNotPublic: nothing is shared (ADR 0017)


def _shape_problems(key: str, op: Operation, response: httpx.Response) -> list[str]:
    if key in SHAPES:
        return check_body(SHAPES[key], response.json())
    return check_response(op.method, response.request.url.path, response.status_code, response.json())


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """The caller is an admin (award) whatever id the database gives it (sequences outlive rollbacks)."""
    return {"admins": list(range(1, 20_000))}


def test_every_operation_is_called_or_pending() -> None:
    ops = operations()
    assert len(ops) == 90
    pending = {key for key, op in ops.items() if op.operation_id in PENDING}
    assert not set(CALLS) - set(ops), "CALLS names operations the swagger lacks"
    assert not set(CALLS) & pending, "an operation is both called and pending"
    assert set(CALLS) | pending == set(ops), f"neither called nor pending: {set(ops) - set(CALLS) - pending}"
    assert {op.operation_id for op in ops.values()} >= PENDING, "PENDING names unknown operations"


async def test_swagger_walk(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    ours = our_routes(horde)
    ops = operations()
    problems = []
    started = [op for op in ops.values() if op.operation_id in PENDING and _ours(op) in ours]
    problems += [f"{op.method} {op.template}: pending, but it has a route now" for op in started]
    walk = Walk(client, api_key)
    for key, call in CALLS.items():
        op = ops[key]
        if _ours(op) not in ours:
            problems.append(f"{key}: no such route")
            continue
        response = await call(walk)
        expected = EXPECTED_STATUS.get(key)
        if (expected is None and not response.is_success) or (expected and response.status_code != expected):
            problems.append(f"{key}: {response.status_code} {response.text[:200]}")
            continue
        if key in SHAPES:
            found = check_body(SHAPES[key], response.json())
        else:
            found = check_response(
                op.method, response.request.url.path, response.status_code, response.json()
            )
        extras = {f"unexpected key {extra!r}" for extra in EXTRA_KEYS.get(key, ())}
        problems += [f"{key}: {p}" for p in found if p.split(": ", 1)[-1] not in extras]
    assert not problems, "\n".join(problems)
