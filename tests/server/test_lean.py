"""The lean hot path (ADR 0020) answers what FastAPI answers: recorded traffic sent to both.

Two apps serve the same horde: one with the lean handlers (the default), one with
`lean_hot_paths=False`, where FastAPI's routes answer. Every request below goes to both, one after the
other, and the status, the parsed body and the headers a client reads must be the same.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from horde.server import app as app_module
from horde.server.app import create_app
from horde.server.jobs import routes
from horde.server.lean import LeanMiddleware
from horde.server.state import Horde
from tests.helpers import V2, png_b64

# the headers a client reads (the request id differs per request: only its presence is compared)
HEADERS = (
    "content-type", "horde-wait-supported", "access-control-allow-origin", "access-control-expose-headers",
    "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
)  # fmt: skip
ANON = "0000000000"
BANNED_AGENT = "My-Project:v0.0.1:My-Contact"


def _transport(app: Any) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app, client=("127.0.0.1", 12345), raise_app_exceptions=False)


@pytest.fixture
async def both(horde: Horde) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    lean = create_app(horde.settings, horde=horde)
    plain = create_app(horde.settings.model_copy(update={"lean_hot_paths": False}), horde=horde)
    async with (
        httpx.AsyncClient(transport=_transport(lean), base_url="http://testserver") as a,
        httpx.AsyncClient(transport=_transport(plain), base_url="http://testserver") as b,
    ):
        yield a, b


def _seen(response: httpx.Response, drop: tuple[str, ...]) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except json.JSONDecodeError:
        body = response.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in drop}
    return {
        "status": response.status_code,
        "body": body,
        "headers": {name: response.headers.get(name) for name in HEADERS},
        "request id": bool(response.headers.get("x-request-id")),
    }


async def _same(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], method: str, url: str, *, drop: tuple[str, ...] = (),
    **kwargs: Any,
) -> dict[str, Any]:  # fmt: skip
    lean, plain = both
    a = _seen(await lean.request(method, url, **kwargs), drop)
    b = _seen(await plain.request(method, url, **kwargs), drop)
    assert a == b, f"{method} {url} {kwargs}"
    return a


KINDS: dict[str, dict[str, Any]] = {
    "text": {
        "async": "generate/text/async", "pop": "generate/text/pop", "submit": "generate/text/submit",
        "status": ["generate/text/status"], "request": {"prompt": "hello", "params": {"n": 1}},
        "worker": {"name": "lean text worker"}, "result": {"generation": "world"},
        "wrong": {"name": "w", "max_length": "many"},
    },
    "image": {
        "async": "generate/async", "pop": "generate/pop", "submit": "generate/submit",
        "status": ["generate/status", "generate/check"], "request": {"prompt": "a cat", "r2": False},
        "worker": {"name": "lean image worker"}, "result": {"generation": png_b64(), "seed": 3},
        "wrong": {"name": "w", "max_pixels": [1]},
    },
    "alchemy": {
        "async": "interrogate/async", "pop": "interrogate/pop", "submit": "interrogate/submit",
        "status": ["interrogate/status"],
        "request": {"forms": [{"name": "caption"}], "source_image": png_b64()},
        "worker": {"name": "lean alchemy worker", "forms": ["caption"]},
        "result": {"result": {"caption": "a"}}, "wrong": {"name": "w", "forms": "caption"},
    },
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_the_lean_path_answers_what_fastapi_answers(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], api_key: str, kind: str
) -> None:
    k, auth = KINDS[kind], {"apikey": api_key}
    pop, submit, accept = f"{V2}/{k['pop']}", f"{V2}/{k['submit']}", f"{V2}/{k['async']}"

    # pops: empty, every kind of bad input, masks, waits
    empty = await _same(both, "POST", pop, json=k["worker"], headers=auth)
    assert empty["status"] == 200 and empty["headers"]["horde-wait-supported"] == "1", empty
    assert (await _same(both, "POST", pop, content=b"{nope", headers=auth))["status"] == 400
    assert (await _same(both, "POST", pop, json=k["wrong"], headers=auth))["status"] == 400
    assert (await _same(both, "POST", pop, json={}, headers=auth))["status"] == 400
    assert (await _same(both, "POST", pop, json=[1], headers=auth))["status"] == 400
    assert (await _same(both, "POST", pop, json=k["worker"]))["status"] == 400  # no key
    assert (await _same(both, "POST", pop, json=k["worker"], headers={"apikey": "  "}))["status"] == 400
    bearer = await _same(both, "POST", pop, json=k["worker"], headers={"Authorization": f"Bearer {api_key}"})
    assert bearer["status"] == 200, bearer
    bad = await _same(both, "POST", pop, json=k["worker"], headers={"apikey": "not a key"})
    assert bad["status"] == 401 and bad["body"]["rc"] == "InvalidAPIKey", bad
    anon = await _same(both, "POST", pop, json=k["worker"], headers={"apikey": ANON})
    assert anon["status"] == 403 and anon["body"]["rc"] == "AnonForbiddenWorker", anon
    assert (await _same(both, "POST", pop, headers=auth))["status"] == 400  # no body
    assert (await _same(both, "POST", pop, content=b"", headers=auth))["status"] == 400
    no_type = await _same(both, "POST", pop, content=json.dumps(k["worker"]).encode(), headers=auth)
    assert no_type["status"] == 400, no_type  # FastAPI's strict content type
    for content_type in ("text/plain", "application/vnd.horde+json", "application/json; charset=utf-8"):
        headers = {**auth, "content-type": content_type}
        await _same(both, "POST", pop, content=json.dumps(k["worker"]).encode(), headers=headers)
    json_type = {**auth, "content-type": "application/json"}
    assert (await _same(both, "POST", pop, content=b'{"name": NaN}', headers=json_type))["status"] == 400
    assert (await _same(both, "POST", pop, content=b"\xff\xfe{}", headers=json_type))["status"] == 400
    masked = await _same(both, "POST", pop, json=k["worker"], headers={**auth, "X-Fields": "skipped"})
    assert masked["status"] == 200 and set(masked["body"]) <= {"skipped"}, masked
    await _same(both, "POST", pop, json=k["worker"], headers={**auth, "X-Fields": "{bad"})
    await _same(both, "POST", pop, json=k["worker"], headers={**auth, "Horde-Wait": "0"})
    await _same(both, "POST", pop, json=k["worker"], headers={**auth, "Horde-Wait": "nan"})
    await _same(both, "POST", f"{pop}/", json=k["worker"], headers=auth)  # not a lean path: FastAPI's
    await _same(both, "GET", pop, headers=auth)

    # submits of jobs that do not exist, and bad ones
    unknown = {"id": "00000000-0000-0000-0000-000000000000", **k["result"]}
    missing = await _same(both, "POST", submit, json=unknown, headers=auth)
    assert missing["status"] == 404, missing
    await _same(both, "POST", submit, json={**unknown, "id": "x"}, headers=auth)
    assert (await _same(both, "POST", submit, json=k["result"], headers=auth))["status"] == 400
    assert (await _same(both, "POST", submit, json=unknown))["status"] == 400
    assert (await _same(both, "POST", submit, json=unknown, headers={"apikey": "bad"}))["status"] == 401

    # asyncs: priced, refused, queued (twice: the same answer but the id)
    dry_run = {**k["request"], "dry_run": True}
    dry = await _same(both, "POST", accept, json=dry_run, headers=auth, drop=("id",))
    assert dry["status"] == (202 if kind == "alchemy" else 200), dry  # alchemy has no dry run
    assert (await _same(both, "POST", accept, json={"params": {}}, headers=auth))["status"] == 400
    assert (await _same(both, "POST", accept, json=k["request"]))["status"] == 400
    banned = await _same(
        both, "POST", accept, json=k["request"], headers={**auth, "Client-Agent": BANNED_AGENT}
    )
    assert banned["body"]["rc"] == "BannedClientAgent", banned
    queued = await _same(both, "POST", accept, json=k["request"], headers=auth, drop=("id",))
    assert queued["status"] == 202, queued
    once = {**auth, "Idempotency-Key": f"lean-{kind}"}
    lean, plain = both
    first = await lean.post(accept, json=k["request"], headers=once)
    again = await plain.post(accept, json=k["request"], headers=once)
    assert first.status_code == again.status_code == 202 and first.json() == again.json(), first.text
    request_id = first.json()["id"]

    # status polls: unknown, malformed, waiting, masked
    for status in k["status"]:
        url = f"{V2}/{status}"
        assert (await _same(both, "GET", f"{url}/{request_id}"))["status"] == 200
        assert (await _same(both, "GET", f"{url}/{request_id}", headers={"Horde-Wait": "0.01"}))[
            "status"
        ] == 200
        assert (await _same(both, "GET", f"{url}/00000000-0000-0000-0000-000000000000"))["status"] == 404
        assert (await _same(both, "GET", f"{url}/not-an-id"))["status"] in (400, 404)
        await _same(both, "GET", f"{url}/{request_id}", headers={"X-Fields": "done,waiting"})
        await _same(both, "GET", f"{url}/")
        await _same(both, "OPTIONS", f"{url}/{request_id}")

    # a job handed out and submitted: the pop on one path, the submit on the other
    hit = (await lean.post(pop, json=k["worker"], headers=auth)).json()
    job_id = hit["forms"][0]["id"] if kind == "alchemy" else hit["id"]
    assert job_id, hit
    done = await plain.post(submit, json={"id": job_id, **k["result"]}, headers=auth)
    twice = await lean.post(submit, json={"id": job_id, **k["result"]}, headers=auth)
    assert done.status_code == 200 and twice.status_code == 400, (done.text, twice.text)
    assert twice.json()["rc"] == "DuplicateGen", twice.text


async def test_the_lean_handlers_serve_and_fastapi_does_not(
    horde: Horde, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proof that the lean path is the one taken: the FastAPI routes' helpers are broken here."""

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("FastAPI served a lean route")

    for name in ("_pop", "_submit", "_status", "_accept"):
        monkeypatch.setattr(routes, name, broken)
    app = create_app(horde.settings, horde=horde)
    async with httpx.AsyncClient(transport=_transport(app), base_url="http://testserver") as client:
        auth = {"apikey": api_key}
        pop = await client.post(f"{V2}/generate/text/pop", json={"name": "lean worker"}, headers=auth)
        assert pop.status_code == 200 and "skipped" in pop.json(), pop.text
        queued = await client.post(f"{V2}/generate/text/async", json={"prompt": "p"}, headers=auth)
        assert queued.status_code == 202, queued.text
        status = await client.get(f"{V2}/generate/text/status/{queued.json()['id']}")
        assert status.status_code == 200 and status.json()["done"] is False, status.text
        submit = await client.post(
            f"{V2}/generate/text/submit", json={"id": queued.json()["id"]}, headers=auth
        )
        assert submit.status_code == 404, submit.text
        metrics = (await client.get("/metrics")).text  # latency labelled with the lean route's template
        assert 'method="GET",route="/api/v2/generate/text/status/{id}",status="200"' in metrics
        # FastAPI still serves the rest
        assert (await client.get(f"{V2}/status/heartbeat")).status_code == 200
    assert any(m.cls is LeanMiddleware for m in app.user_middleware)
    off = create_app(horde.settings.model_copy(update={"lean_hot_paths": False}), horde=horde)
    assert not any(m.cls is LeanMiddleware for m in off.user_middleware)


async def test_the_served_openapi_does_not_change(both: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    lean, plain = both
    served = (await lean.get("/api/swagger.json")).json()
    assert served == (await plain.get("/api/swagger.json")).json()
    for method, path in routes.LEAN:
        assert method.lower() in served["paths"][path], path


async def test_rate_limits_apply_to_the_lean_routes(horde: Horde, api_key: str) -> None:
    """Each app counts its own requests: the same sequence to both meets the same limits and headers."""
    limited = horde.settings.model_copy(update={"test_ratelimit_disabled": False})
    lean = create_app(limited, horde=horde)
    plain = create_app(limited.model_copy(update={"lean_hot_paths": False}), horde=horde)
    assert app_module.LeanMiddleware is LeanMiddleware
    async with (
        httpx.AsyncClient(transport=_transport(lean), base_url="http://testserver") as a,
        httpx.AsyncClient(transport=_transport(plain), base_url="http://testserver") as b,
    ):
        body, auth = {"prompt": "p", "dry_run": True}, {"apikey": api_key}
        answers = [
            await _same((a, b), "POST", f"{V2}/generate/text/async", json=body, headers=auth)
            for _ in range(3)
        ]
        pops = [
            await _same(
                (a, b), "POST", f"{V2}/generate/text/pop", json={"name": "limited worker"}, headers=auth
            )
            for _ in range(2)
        ]
    assert [x["status"] for x in answers] == [200, 200, 429], answers
    assert answers[0]["headers"]["x-ratelimit-limit"] is not None, answers[0]
    assert [x["status"] for x in pops] == [200, 200], pops
