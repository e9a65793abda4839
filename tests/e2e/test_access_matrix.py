"""Every route called as every role against a real `horde serve` over HTTP (ADR 0009).

The expected answers (tests/e2e/matrix_expected.py) are written by hand from the Auth columns of
SEMANTICS.md section 1 and the anonymous rules of section 2, not from the server's access table
(`server/access.py`): the table is only read to check that every route it names has a row there, so
a wrong row in the table, a guard a route forgot or a service that no longer asks the table makes
this test fail.

Callers: no key, an unknown key, the anonymous key, and registered users with one role each; the
"owner" owns the user record the calls target, the "worker_owner" the workers and jobs they target.
Each (status, rc) is compared; rc is None where the body has none (a validation error, a page).
"""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image

from horde.server import access
from tests import services
from tests.e2e.conftest import HordeServer, _free_port, _horde_command, _server_env, _stop, _wait_ready
from tests.e2e.matrix_expected import (
    ADMIN_ALIAS,
    ANON_KEY,
    CALLERS,
    EXPECTED,
    REGEN,
    ROLE_FIELDS,
    Answer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("access-matrix")]

V2 = "/api/v2"


def _webp(size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (0, 90, 180)).save(out, format="WEBP")
    return out.getvalue()


def _webp_b64() -> str:
    return base64.b64encode(_webp()).decode()


STEPS = {"steps": 10}
RATING = {"best": "6038971e-f0b0-4fdd-a3bb-148f561f815e"}
MATRIX_FILTER = {"regex": r"\bmatrix\b", "filter_type": 20}
NO_MAINTENANCE = {"maintenance_mode": False}
DOC_RANGE_TIMEOUT = {"ipaddr": "203.0.113.0/24", "hours": 1}
TEXT_REQUEST = {"prompt": "Once", "models": ["matrix-model"]}
ALCHEMY_REQUEST = {"forms": [{"name": "caption"}], "source_image": _webp_b64()}


@dataclass
class World:
    """The server, a key per caller, and the objects the calls target."""

    server: HordeServer
    http: httpx.Client
    keys: dict[str, str | None] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}-{uuid.uuid4().hex[:6]}"

    def call(self, caller: str, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        key = self.keys[caller]
        headers = {"apikey": key} if key is not None else {}
        if key is not None and path.startswith("/v1/"):  # as OpenAI's clients send it
            headers = {"Authorization": f"Bearer {key}"}
        url = path if path.startswith("http") else f"{self.server.base_url}{path}"
        return self.http.request(method, url, json=body, headers=headers, **kwargs)

    def ok(self, caller: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.call(caller, method, path, body)
        assert response.is_success, (method, path, response.status_code, response.text)
        answer: dict[str, Any] = response.json()
        return answer

    def worker(self, kind: str = "text") -> str:
        """A new worker of the worker owner's; its id."""
        name = self.fresh(f"matrix {kind}")
        self.pop("worker_owner", kind, name)
        found = self.ok("none", "GET", f"{V2}/workers/name/{name}")
        return str(found["id"])

    def pop(self, caller: str, kind: str, name: str) -> httpx.Response:
        path, body = {
            "image": ("generate/pop", {"models": ["stable_diffusion"], "bridge_agent": REGEN}),
            "text": ("generate/text/pop", {"models": ["matrix-model"]}),
            "alchemy": ("interrogate/pop", {"forms": ["caption"]}),
        }[kind]  # fmt: skip
        return self.call(caller, "POST", f"{V2}/{path}", {"name": name, **body})


def _user(world: World, name: str, **fields: Any) -> tuple[str, str]:
    body = {"username": name, "oauth_id": f"matrix-{name}", "moderator": False, "trusted": False, **fields}
    reply = world.ok("none", "POST", f"{V2}/dev/test-user", body)
    return str(reply["api_key"]), str(reply["user_id"])


def _populate(world: World) -> None:
    """The users (one per role), the worker owner's workers and one job of each kind they hold."""
    world.keys.update(none=None, invalid="not-a-key-of-anyone", anonymous=ANON_KEY)
    key, admin_id = _user(world, "matrix_admin")
    assert f"matrix_admin#{admin_id}" == ADMIN_ALIAS, "the admin must be the database's first user"
    world.keys["admin"] = key
    user_ids = {"admin": admin_id}
    for role, fields in ROLE_FIELDS.items():
        world.keys[role], user_ids[role] = _user(world, f"matrix_{role}", **fields)
    world.ids["owner_id"] = user_ids["owner"]
    # many workers come from 127.0.0.1: invite everyone, and give two their role
    for role, user_id in user_ids.items():
        changes: dict[str, Any] = {"worker_invited": 1000}
        if role in ("customizer", "service"):
            changes[role] = True
        world.ok("moderator", "PUT", f"{V2}/users/{user_id}", changes)
    _jobs(world)


def _jobs(world: World) -> None:
    """One job of each kind, held by the worker owner's workers, and the requests they belong to."""
    image = world.ok("owner", "POST", f"{V2}/generate/async", {"prompt": "a lighthouse", "params": STEPS})
    text = world.ok(
        "owner", "POST", f"{V2}/generate/text/async", {"prompt": "Once", "models": ["matrix-model"]}
    )
    alchemy = world.ok(
        "owner", "POST", f"{V2}/interrogate/async", ALCHEMY_REQUEST
    )  # fmt: skip
    world.ids.update(image_request=image["id"], text_request=text["id"], alchemy_request=alchemy["id"])
    for kind in ("image", "text", "alchemy"):
        name = world.fresh(f"matrix {kind}")
        popped = world.pop("worker_owner", kind, name)
        assert popped.status_code == 200, popped.text
        body = popped.json()
        job = body["forms"][0]["id"] if kind == "alchemy" else body["id"]
        assert job, (kind, body)
        world.ids[f"{kind}_job"] = job
        world.ids[f"{kind}_worker_name"] = name
        if kind == "image":
            world.ids["upload_url"] = body["r2_upload"]


Call = Callable[[World, str], httpx.Response]


def _submit(kind: str) -> Call:
    def call(world: World, caller: str) -> httpx.Response:
        job = world.ids[f"{kind}_job"]
        path, body = {
            "image": ("generate/submit", {"id": job, "generation": _webp_b64(), "seed": 1, "state": "ok"}),
            "text": ("generate/text/submit", {"id": job, "generation": "upon a time", "state": "ok"}),
            "alchemy": ("interrogate/submit", {"id": job, "result": {"caption": "a light"}, "state": "ok"}),
        }[kind]  # fmt: skip
        return world.call(caller, "POST", f"{V2}/{path}", body)

    return call


def _get_object(world: World, caller: str) -> httpx.Response:
    if "image_url" not in world.ids:
        status = world.ok("none", "GET", f"{V2}/generate/status/{world.ids['image_request']}")
        world.ids["image_url"] = status["generations"][0]["img"]
    return world.call(caller, "GET", world.ids["image_url"])


def _delete_worker(world: World, caller: str) -> httpx.Response:
    return world.call(caller, "DELETE", f"{V2}/workers/{world.worker()}")


def _put_worker(field: str, value: Any) -> Call:
    def call(world: World, caller: str) -> httpx.Response:
        key = f"worker_for_{field}"
        if key not in world.ids:
            world.ids[key] = world.worker()
        return world.call(caller, "PUT", f"{V2}/workers/{world.ids[key]}", {field: value})

    return call


def _put_owner(body: dict[str, Any]) -> Call:
    return lambda w, c: w.call(c, "PUT", f"{V2}/users/{w.ids['owner_id']}", body)


def _delete_user(world: World, caller: str) -> httpx.Response:
    """The owner deletes itself (and undeletes at once: later rows need its key); others a new user."""
    if caller == "owner":
        response = world.call(caller, "DELETE", f"{V2}/users/{world.ids['owner_id']}")
        if response.status_code == 200:
            world.ok("owner", "PUT", f"{V2}/users/{world.ids['owner_id']}", {"undelete": True})
        return response
    _, target = _user(world, world.fresh("matrix_doomed"))
    return world.call(caller, "DELETE", f"{V2}/users/{target}")


def _team(world: World) -> str:
    """A new team of the trusted user's; its id."""
    return str(world.ok("trusted", "POST", f"{V2}/teams", {"name": world.fresh("matrix team")})["id"])


def _team_id(world: World) -> str:
    if "team" not in world.ids:
        world.ids["team"] = _team(world)
    return world.ids["team"]


def _sharedkey(world: World) -> str:
    """The owner's shared key the calls target (a new one once the owner's delete used it up; with the
    owner's own PUT that makes three keys, a plain user's cap)."""
    if "sharedkey" not in world.ids:
        world.ids["sharedkey"] = str(
            world.ok("owner", "PUT", f"{V2}/sharedkeys", {"name": "owned key"})["id"]
        )
    return world.ids["sharedkey"]


def _delete_sharedkey(world: World, caller: str) -> httpx.Response:
    response = world.call(caller, "DELETE", f"{V2}/sharedkeys/{_sharedkey(world)}")
    if response.status_code == 200:
        del world.ids["sharedkey"]
    return response


def _style(world: World, kind: str, *, fresh: bool = False) -> str:
    """A style of the customizer's (a new one when `fresh`: an allowed delete uses it up); its id."""
    key = f"{kind}_style"
    if fresh or key not in world.ids:
        name = world.fresh(f"matrix {kind} style")
        body = {"name": name, "prompt": "{p}, matrix###{np}", "models": ["stable_diffusion"]}
        world.ids[key] = str(world.ok("customizer", "POST", f"{V2}/styles/{kind}", body)["id"])
        world.ids[f"{key}_name"] = name
    return world.ids[key]


def _post_style(kind: str) -> Call:
    def call(world: World, caller: str) -> httpx.Response:
        body = {"name": world.fresh("matrix style"), "prompt": "{p} and {np}", "models": ["stable_diffusion"]}
        return world.call(caller, "POST", f"{V2}/styles/{kind}", body)

    return call


def _example(world: World, *, fresh: bool = False) -> str:
    """An example of the customizer's image style (a new one when `fresh`); its id."""
    if fresh or "example" not in world.ids:
        body = {"url": f"https://example.org/{world.fresh('matrix')}.webp"}
        path = f"{V2}/styles/image/{_style(world, 'image', fresh=True)}/example"
        world.ids["example"] = str(world.ok("customizer", "POST", path, body)["id"])
        world.ids["example_style"] = world.ids["image_style"]
    return world.ids["example"]


def _example_call(method: str) -> Call:
    def call(world: World, caller: str) -> httpx.Response:
        example = _example(world, fresh=method == "DELETE")
        path = f"{V2}/styles/image/{world.ids['example_style']}/example/{example}"
        body = {"url": f"https://example.org/{world.fresh('patched')}.webp"} if method == "PATCH" else None
        return world.call(caller, method, path, body)

    return call


def _collection(world: World, *, fresh: bool = False) -> str:
    if fresh or "collection" not in world.ids:
        name = world.fresh("matrix collection")
        body = {"name": name, "styles": [_style(world, "image")]}
        world.ids["collection"] = str(world.ok("customizer", "POST", f"{V2}/collections", body)["id"])
        world.ids["collection_name"] = name
    return world.ids["collection"]


def _style_calls() -> dict[str, Call]:
    calls: dict[str, Call] = {}
    for kind in ("image", "text"):
        path = f"{V2}/styles/{kind}"
        calls.update({
            f"GET /styles/{kind}": _simple("GET", path),
            f"POST /styles/{kind}": _post_style(kind),
            f"GET /styles/{kind}/{{style_id}}": lambda w, c, k=kind: w.call(
                c, "GET", f"{V2}/styles/{k}/{_style(w, k)}"
            ),
            f"GET /styles/{kind}_by_name/{{style_name}}": lambda w, c, k=kind: w.call(
                c, "GET", f"{V2}/styles/{k}_by_name/{_style(w, k) and w.ids[f'{k}_style_name']}"
            ),
            f"PATCH /styles/{kind}/{{style_id}}": lambda w, c, k=kind: w.call(
                c, "PATCH", f"{V2}/styles/{k}/{_style(w, k)}", {"info": f"patched by {c}"}
            ),
            f"DELETE /styles/{kind}/{{style_id}}": lambda w, c, k=kind: w.call(
                c, "DELETE", f"{V2}/styles/{k}/{_style(w, k, fresh=True)}"
            ),
        })  # fmt: skip
    return calls


def _message(world: World) -> str:
    """A new message of the worker owner's to their worker; its id."""
    if "message_worker" not in world.ids:
        world.ids["message_worker"] = world.worker()
    body = {"worker_id": world.ids["message_worker"], "message": "hello from the matrix"}
    return str(world.ok("worker_owner", "POST", f"{V2}/workers/messages", body)["id"])


def _message_call(world: World, caller: str, method: str) -> httpx.Response:
    return world.call(caller, method, f"{V2}/workers/messages/{_message(world)}")


def _post_message(world: World, caller: str) -> httpx.Response:
    if "message_worker" not in world.ids:
        world.ids["message_worker"] = world.worker()
    body = {"worker_id": world.ids["message_worker"], "message": "hello", "expiry": 1}
    return world.call(caller, "POST", f"{V2}/workers/messages", body)


def _simple(method: str, path: str, body: Any = None, **kwargs: Any) -> Call:
    return lambda w, c: w.call(c, method, path.format(**w.ids), body, **kwargs)


def _new_test_user(world: World, caller: str) -> httpx.Response:
    name = world.fresh("matrix_dev")
    body = {"username": name, "oauth_id": name, "moderator": False, "trusted": False}
    return world.call(caller, "POST", f"{V2}/dev/test-user", body)


def _to_recipient(world: World, caller: str, verb: str) -> httpx.Response:
    """One kudo to a user who never sends any (so no transfer back is ever too fast)."""
    if "recipient" not in world.ids:
        world.ids["recipient"] = world.ok("none", "POST", f"{V2}/dev/test-user", {
            "username": "matrix_recipient", "oauth_id": "matrix-recipient", "moderator": False,
            "trusted": False,
        })["alias"]  # fmt: skip
    return world.call(caller, "POST", f"{V2}/kudos/{verb}", {"username": world.ids["recipient"], "amount": 1})


CALLS: dict[str, Call] = {
    "POST /generate/async": _simple("POST", f"{V2}/generate/async", {"prompt": "a cat", "params": STEPS}),
    "GET /generate/check/{id}": _simple("GET", f"{V2}/generate/check/{{image_request}}"),
    "GET /generate/status/{id}": _simple("GET", f"{V2}/generate/status/{{image_request}}"),
    "POST /generate/pop": lambda w, c: w.pop(c, "image", w.fresh("matrix image")),
    "POST /generate/pop (a taken name)": lambda w, c: w.pop(c, "image", w.ids["image_worker_name"]),
    # the upload before the submit: a job's upload URL takes nothing once it is submitted (ADR 0010)
    "PUT /objects/{key}": lambda w, c: w.call(c, "PUT", w.ids["upload_url"], content=_webp()),
    "POST /generate/submit": _submit("image"),
    "GET /objects/{key}": _get_object,
    "POST /generate/rate/{id}": _simple("POST", f"{V2}/generate/rate/{{image_request}}", RATING),
    "POST /generate/text/async": _simple("POST", f"{V2}/generate/text/async", TEXT_REQUEST),
    "GET /generate/text/status/{id}": _simple("GET", f"{V2}/generate/text/status/{{text_request}}"),
    "POST /generate/text/pop": lambda w, c: w.pop(c, "text", w.fresh("matrix text")),
    "POST /generate/text/submit": _submit("text"),
    "POST /interrogate/async": lambda w, c: w.call(c, "POST", f"{V2}/interrogate/async", ALCHEMY_REQUEST),
    "GET /interrogate/status/{id}": _simple("GET", f"{V2}/interrogate/status/{{alchemy_request}}"),
    "POST /interrogate/pop": lambda w, c: w.pop(c, "alchemy", w.fresh("matrix alchemy")),
    "POST /interrogate/submit": _submit("alchemy"),
    "GET /workers": _simple("GET", f"{V2}/workers"),
    "GET /workers/{worker_id}": lambda w, c: w.call(c, "GET", f"{V2}/workers/{_put_worker_id(w)}"),
    "GET /workers/name/{worker_name}": _simple("GET", f"{V2}/workers/name/{{text_worker_name}}"),
    "PUT /workers/{worker_id} (info)": _put_worker("info", "a worker of the matrix"),
    "PUT /workers/{worker_id} (paused)": _put_worker("paused", True),
    "DELETE /workers/{worker_id}": _delete_worker,
    "GET /find_user": _simple("GET", f"{V2}/find_user"),
    "GET /users": _simple("GET", f"{V2}/users"),
    "GET /users/{user_id}": _simple("GET", f"{V2}/users/{{owner_id}}"),
    "PUT /users/{user_id} (contact: self or mod)": _put_owner({"contact": "owner@example.org"}),
    "PUT /users/{user_id} (trusted: mod)": _put_owner({"trusted": False}),
    "PUT /users/{user_id} (admin_comment: mod)": _put_owner({"admin_comment": "seen by the matrix"}),
    "PUT /users/{user_id} (moderator: admin)": _put_owner({"moderator": False}),
    "PUT /users/{user_id} (kudos: admin)": _put_owner({"kudos": 1}),
    "DELETE /users/{user_id}": _delete_user,
    "POST /kudos/transfer": lambda w, c: _to_recipient(w, c, "transfer"),
    "POST /kudos/award": lambda w, c: _to_recipient(w, c, "award"),
    "GET /teams": _simple("GET", f"{V2}/teams"),
    "POST /teams": lambda w, c: w.call(c, "POST", f"{V2}/teams", {"name": w.fresh("matrix team")}),
    "GET /teams/{team_id}": lambda w, c: w.call(c, "GET", f"{V2}/teams/{_team_id(w)}"),
    "PATCH /teams/{team_id}": lambda w, c: w.call(c, "PATCH", f"{V2}/teams/{_team_id(w)}", {"info": "new"}),
    "DELETE /teams/{team_id}": lambda w, c: w.call(c, "DELETE", f"{V2}/teams/{_team(w)}"),
    "PUT /sharedkeys": lambda w, c: w.call(c, "PUT", f"{V2}/sharedkeys", {"name": "matrix key"}),
    "GET /sharedkeys/{sharedkey_id}": lambda w, c: w.call(c, "GET", f"{V2}/sharedkeys/{_sharedkey(w)}"),
    "PATCH /sharedkeys/{sharedkey_id}": lambda w, c: w.call(
        c, "PATCH", f"{V2}/sharedkeys/{_sharedkey(w)}", {"kudos": 10}
    ),
    "DELETE /sharedkeys/{sharedkey_id}": _delete_sharedkey,
    "GET /stats/img/totals": _simple("GET", f"{V2}/stats/img/totals"),
    "GET /stats/img/models": _simple("GET", f"{V2}/stats/img/models"),
    "GET /stats/text/totals": _simple("GET", f"{V2}/stats/text/totals"),
    "GET /stats/text/models": _simple("GET", f"{V2}/stats/text/models"),
    **_style_calls(),
    "POST /styles/image/{style_id}/example": lambda w, c: w.call(
        c, "POST", f"{V2}/styles/image/{_style(w, 'image', fresh=True)}/example", {"url": "https://example.org/m.webp"}
    ),
    "PATCH /styles/image/{style_id}/example/{example_id}": _example_call("PATCH"),
    "DELETE /styles/image/{style_id}/example/{example_id}": _example_call("DELETE"),
    "GET /collections": _simple("GET", f"{V2}/collections"),
    "POST /collections": lambda w, c: w.call(
        c, "POST", f"{V2}/collections", {"name": w.fresh("matrix collection"), "styles": [_style(w, "image")]}
    ),
    "GET /collections/{collection_id}": lambda w, c: w.call(c, "GET", f"{V2}/collections/{_collection(w)}"),
    "GET /collection_by_name/{collection_name}": lambda w, c: w.call(
        c, "GET", f"{V2}/collection_by_name/{_collection(w) and w.ids['collection_name']}"
    ),
    "PATCH /collections/{collection_id}": lambda w, c: w.call(
        c, "PATCH", f"{V2}/collections/{_collection(w)}", {"info": f"patched by {c}"}
    ),
    "DELETE /collections/{collection_id}": lambda w, c: w.call(
        c, "DELETE", f"{V2}/collections/{_collection(w, fresh=True)}"
    ),
    "GET /workers/messages": _simple("GET", f"{V2}/workers/messages"),
    "POST /workers/messages": _post_message,
    "GET /workers/messages/{message_id}": lambda w, c: _message_call(w, c, "GET"),
    "DELETE /workers/messages/{message_id}": lambda w, c: _message_call(w, c, "DELETE"),
    "GET /filters": _simple("GET", f"{V2}/filters"),
    "PUT /filters": _simple("PUT", f"{V2}/filters", MATRIX_FILTER),
    "POST /filters": _simple("POST", f"{V2}/filters", {"prompt": "a matrix of cats"}),
    "GET /filters/regex": _simple("GET", f"{V2}/filters/regex"),
    "GET /filters/{filter_id}": lambda w, c: w.call(c, "GET", f"{V2}/filters/{_filter_id(w)}"),
    "PATCH /filters/{filter_id}": lambda w, c: w.call(
        c, "PATCH", f"{V2}/filters/{_filter_id(w)}", {"description": f"seen by {c}"}
    ),
    "DELETE /filters/{filter_id}": lambda w, c: w.call(
        c, "DELETE", f"{V2}/filters/{_filter_id(w, fresh=True)}"
    ),
    "GET /problem_jobs": _simple("GET", f"{V2}/problem_jobs"),
    "GET /status/heartbeat": _simple("GET", f"{V2}/status/heartbeat"),
    "GET /status/models": _simple("GET", f"{V2}/status/models"),
    "GET /status/models/{model_name:path}": _simple("GET", f"{V2}/status/models/stable_diffusion"),
    "GET /status/performance": _simple("GET", f"{V2}/status/performance"),
    "GET /status/news": _simple("GET", f"{V2}/status/news"),
    "GET /status/modes": _simple("GET", f"{V2}/status/modes"),
    "GET /documents/terms": _simple("GET", f"{V2}/documents/terms", params={"format": "markdown"}),
    "GET /documents/privacy": _simple("GET", f"{V2}/documents/privacy"),
    "GET /documents/sponsors": _simple("GET", f"{V2}/documents/sponsors"),
    # changes nothing: the calls after these must still be served
    "PUT /status/modes (maintenance: admin)": _simple("PUT", f"{V2}/status/modes", NO_MAINTENANCE),
    "PUT /status/modes (raid: mod)": _simple("PUT", f"{V2}/status/modes", {"raid_mode": False}),
    "POST /dev/test-user": _new_test_user,
    "GET /.well-known/serviceinfo": _simple("GET", "/.well-known/serviceinfo"),
    "GET /metrics": _simple("GET", "/metrics"),
    "GET /register": _simple("GET", "/register"),
    "GET /v1/models": _simple("GET", "/v1/models"),
    **{
        f"GET /{path}/{{id}}/events": _simple("GET", f"{V2}/{path}/{uuid.UUID(int=7)}/events")
        for path in ("generate/status", "generate/text/status", "interrogate/status")
    },
    "POST /v1/completions": _simple("POST", "/v1/completions", {"model": "m", "prompt": "p", "n": 0}),
    "POST /v1/chat/completions": _simple(
        "POST", "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}
    ),
    "POST /v1/images/generations": _simple("POST", "/v1/images/generations", {"prompt": "p", "n": 0}),
    "POST /register": lambda w, c: w.call(c, "POST", "/register", data={"username": w.fresh("matrix_reg")}),
    # the cancels last: they end the requests the status rows read
    "DELETE /generate/status/{id}": _simple("DELETE", f"{V2}/generate/status/{{image_request}}"),
    "DELETE /generate/text/status/{id}": _simple("DELETE", f"{V2}/generate/text/status/{{text_request}}"),
    "DELETE /interrogate/status/{id}": _simple("DELETE", f"{V2}/interrogate/status/{{alchemy_request}}"),
    **{
        f"{method} {path}": _simple(method, path)
        for method in ("GET", "HEAD")
        for path in ("/api/openapi.json", "/api/", "/redoc", "/docs/oauth2-redirect")
    },
    "GET /api/swagger.json": _simple("GET", "/api/swagger.json"),
    # a documentation range, never the callers' own address; the worker block last and lifted at once
    "POST /operations/ipaddr": _simple("POST", f"{V2}/operations/ipaddr", DOC_RANGE_TIMEOUT),
    "GET /operations/ipaddr": _simple("GET", f"{V2}/operations/ipaddr"),
    "GET /operations/ipaddr/{ipaddr}": _simple("GET", f"{V2}/operations/ipaddr/203.0.113.9"),
    "DELETE /operations/ipaddr": _simple("DELETE", f"{V2}/operations/ipaddr", {"ipaddr": "203.0.113.0/24"}),
    "PUT /operations/block_worker_ipaddr/{worker_id}": lambda w, c: w.call(
        c, "PUT", f"{V2}/operations/block_worker_ipaddr/{_put_worker_id(w)}", {"days": 1}
    ),
    "DELETE /operations/block_worker_ipaddr/{worker_id}": lambda w, c: w.call(
        c, "DELETE", f"{V2}/operations/block_worker_ipaddr/{_put_worker_id(w)}"
    ),
}  # fmt: skip


def _filter_id(world: World, *, fresh: bool = False) -> str:
    """A filter the calls target (a new one for each delete: an allowed delete uses it up)."""
    if fresh or "filter" not in world.ids:
        body = {"regex": rf"\b{world.fresh('matrix')}\b", "filter_type": 21}
        world.ids["filter"] = str(world.ok("moderator", "PUT", f"{V2}/filters", body)["id"])
    return world.ids["filter"]


def _put_worker_id(world: World) -> str:
    if "worker_for_info" not in world.ids:
        world.ids["worker_for_info"] = world.worker()
    return world.ids["worker_for_info"]


def _answer(response: httpx.Response) -> Answer:
    rc = None
    if response.content and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        rc = body.get("rc") if isinstance(body, dict) else None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):  # OpenAI's shape (/v1)
            rc = body["error"].get("code")
    return response.status_code, rc


def _table_route(row: str) -> str:
    """The access-table key a matrix row exercises ("PUT /users/{user_id} (x)" -> "PUT /api/v2/...")."""
    method, path = row.split(" (")[0].split(" ", 1)
    if path.startswith(
        ("/api/", "/.well-known", "/objects", "/register", "/redoc", "/docs", "/metrics", "/v1/")
    ):
        return f"{method} {path}"
    return f"{method} {V2}{path}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def matrix_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HordeServer]:
    """A fresh horde with one admin alias; rate limits off (hundreds of calls from one address)."""
    data_dir = tmp_path_factory.mktemp(f"matrix-{request.param}")
    database = None
    if request.param == "postgresql":
        try:
            database = asyncio.run(services.create_postgres_database())
        except Exception as exc:
            services.unavailable("PostgreSQL", exc)
        url = database.url
    else:
        url = f"sqlite+aiosqlite:///{data_dir / 'horde.sqlite3'}"
    port = _free_port()
    env = _server_env(data_dir, port, url)
    env.update(HORDE_ADMINS=f'["{ADMIN_ALIAS}"]', HORDE_RUN_SCHEDULER="0")
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _horde_command(port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = HordeServer(f"http://127.0.0.1:{port}", request.param, log_path, process)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(server)
        if database is not None:
            asyncio.run(services.drop_postgres_database(database))


def test_every_route_has_a_row() -> None:
    """Every route of the access table is called here, and every row here names a route."""
    exercised = {_table_route(row) for row in EXPECTED}
    assert exercised == set(access.ACCESS)
    assert set(EXPECTED) == set(CALLS)


def test_access_matrix(matrix_server: HordeServer) -> None:
    with httpx.Client(timeout=30) as http:
        world = World(matrix_server, http)
        _populate(world)
        wrong = []
        for row, call in CALLS.items():
            for caller in CALLERS:
                got = _answer(call(world, caller))
                if got != EXPECTED[row][caller]:
                    wrong.append(f"{row} as {caller}: expected {EXPECTED[row][caller]}, got {got}")
    assert not wrong, f"{len(wrong)} of {len(CALLS) * len(CALLERS)} answers differ:\n" + "\n".join(wrong)
