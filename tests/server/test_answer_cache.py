"""The two-tier answer cache (ADR 0026): keys, privacy, tiers, invalidation between nodes, Redis down.

Two "nodes" here are two small ASGI apps behind `AnswerCacheMiddleware`, each with its own cache and
relay on one Redis index, reading one dict that stands for the database; the cache's clock is a fake
one that never moves, so an answer changes only through an invalidation, never by expiry. The last
tests go through the horde's real routes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from horde.server.answer_cache import AnswerCache, AnswerCacheMiddleware, match
from horde.server.app import wire_cache
from horde.server.kit.answers import Answers
from horde.server.kit.clock import FakeClock
from horde.server.kit.notify import Notifier
from horde.server.observe.metrics import REGISTRY
from horde.server.redis import RedisHealth, RedisRelay, connect_relay
from horde.server.state import Horde
from tests.helpers import V2

GUARD = 10.0


@dataclass
class Node:
    client: httpx.AsyncClient
    cache: AnswerCache
    notifier: Notifier
    answers: Answers
    computed: list[str] = field(default_factory=list)  # paths its routes computed


def _app(db: dict[str, Any], node: list[Node]) -> Starlette:
    async def answer(request: Request) -> JSONResponse:
        node[0].computed.append(request.url.path)
        if db.get("slow"):
            await asyncio.sleep(0.2)
        if db.get("fail"):
            return JSONResponse({"message": "not found", "rc": "NotFound"}, status_code=404)
        return JSONResponse({
            "path": request.url.path, "query": sorted(request.query_params.multi_items()),
            "key": request.headers.get("apikey"), "teams": db.get("teams"), "workers": db.get("workers"),
        })  # fmt: skip

    routes = [Route(f"{V2}/{p}", answer) for p in ("teams", "workers", "status/heartbeat")]
    routes.append(Route(f"{V2}/generate/check/{{id}}", answer))
    app = Starlette(routes=routes)
    app.add_middleware(AnswerCacheMiddleware)
    return app


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[tuple[Node, Node, dict[str, Any]]]:
    db: dict[str, Any] = {"teams": "v1", "workers": "w1"}
    prefix = f"cache-test-{uuid.uuid4().hex}:"
    clock = FakeClock()
    made: list[Node] = []
    relays: list[RedisRelay] = []
    for _ in range(2):
        health = RedisHealth(first_delay=0.1, max_delay=0.5)
        cache = AnswerCache(
            client=aioredis.from_url(redis_url), prefix=prefix, health=health, clock=clock.now, wall=clock.now
        )
        notifier, answers = Notifier(), Answers(clock)
        wire_cache(cache, answers, notifier)
        relays.append(await connect_relay(redis_url, prefix=prefix, notifier=notifier, health=health))
        holder: list[Node] = []
        app = _app(db, holder)
        app.state.horde = SimpleNamespace(cache=cache)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node")
        holder.append(Node(http, cache, notifier, answers))
        made.append(holder[0])
    try:
        yield made[0], made[1], db
    finally:
        for node in made:
            await node.client.aclose()
            await node.cache.close()
        for relay in relays:
            await relay.stop()


def _hits(tier: str) -> float:
    value = REGISTRY.get_sample_value("horde_cache_hits_total", {"tier": tier})
    return value or 0.0


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < GUARD:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {GUARD} s: {what}")


async def test_the_second_node_reads_the_first_nodes_answer_from_redis(
    nodes: tuple[Node, Node, dict[str, Any]],
) -> None:
    a, b, _ = nodes
    local, shared = _hits("local"), _hits("shared")
    assert (await a.client.get(f"{V2}/teams")).json()["teams"] == "v1"
    assert (await a.client.get(f"{V2}/teams")).json()["teams"] == "v1"
    assert (await b.client.get(f"{V2}/teams")).json()["teams"] == "v1"
    assert (await b.client.get(f"{V2}/teams")).json()["teams"] == "v1"
    assert a.computed == [f"{V2}/teams"] and b.computed == []
    assert _hits("local") - local == 2  # each node's second read
    assert _hits("shared") - shared == 1  # node b's first read


async def test_a_write_on_one_node_is_seen_on_the_other_at_once(
    nodes: tuple[Node, Node, dict[str, Any]],
) -> None:
    a, b, db = nodes
    assert (await b.client.get(f"{V2}/teams")).json()["teams"] == "v1"
    assert (await a.client.get(f"{V2}/teams")).json()["teams"] == "v1"
    db["teams"] = "v2"
    a.answers.forget("teams")  # what a write's after-commit does (teams/service.py)
    assert (await a.client.get(f"{V2}/teams")).json()["teams"] == "v2"  # no relay needed here

    async def b_sees() -> bool:
        return bool((await b.client.get(f"{V2}/teams")).json()["teams"] == "v2")

    # the clock never moves: only the relayed invalidation can make node b drop its copy
    await _until(b_sees, "node b drops its copy of the teams")


async def test_an_invalidation_drops_only_its_tag(nodes: tuple[Node, Node, dict[str, Any]]) -> None:
    a, _, db = nodes
    await a.client.get(f"{V2}/teams")
    await a.client.get(f"{V2}/workers")
    db["teams"], db["workers"] = "v2", "w2"
    a.cache.invalidate("teams")
    assert (await a.client.get(f"{V2}/teams")).json()["teams"] == "v2"
    assert (await a.client.get(f"{V2}/workers")).json()["workers"] == "w1"


async def test_the_query_is_part_of_the_key_in_any_order(nodes: tuple[Node, Node, dict[str, Any]]) -> None:
    a, _, _ = nodes
    text = (await a.client.get(f"{V2}/workers?type=text")).json()
    image = (await a.client.get(f"{V2}/workers?type=image")).json()
    assert text["query"] == [["type", "text"]] and image["query"] == [["type", "image"]]
    first = (await a.client.get(f"{V2}/workers?type=text&name=x")).json()
    again = (await a.client.get(f"{V2}/workers?name=x&type=text")).json()
    assert again == first
    assert a.computed == [f"{V2}/workers"] * 3


async def test_one_callers_answer_is_never_served_to_another(
    nodes: tuple[Node, Node, dict[str, Any]],
) -> None:
    a, b, _ = nodes
    assert (await a.client.get(f"{V2}/workers", headers={"apikey": "key-one"})).json()["key"] == "key-one"
    assert (await b.client.get(f"{V2}/workers", headers={"apikey": "key-two"})).json()["key"] == "key-two"
    assert (await b.client.get(f"{V2}/workers")).json()["key"] is None
    assert (await b.client.get(f"{V2}/workers", headers={"apikey": "key-one"})).json()["key"] == "key-one"
    assert len(a.computed) + len(b.computed) == 3  # the last one came from Redis
    # the key itself never reaches Redis, only its hash
    raw = await a.cache.client.hgetall(f"{a.cache.prefix}cache:workers")  # type: ignore[union-attr,misc]
    assert raw and not any(b"key-one" in k for k in raw)


async def test_only_successful_answers_are_kept(nodes: tuple[Node, Node, dict[str, Any]]) -> None:
    a, _, db = nodes
    db["fail"] = True
    assert (await a.client.get(f"{V2}/teams")).status_code == 404
    db["fail"] = False
    assert (await a.client.get(f"{V2}/teams")).status_code == 200
    assert len(a.computed) == 2


async def test_concurrent_misses_compute_once(nodes: tuple[Node, Node, dict[str, Any]]) -> None:
    a, _, db = nodes
    db["slow"] = True
    answers = await asyncio.gather(*[a.client.get(f"{V2}/teams") for _ in range(10)])
    assert {r.json()["teams"] for r in answers} == {"v1"}
    assert a.computed == [f"{V2}/teams"]


async def test_a_long_poll_and_other_methods_bypass_the_cache(
    nodes: tuple[Node, Node, dict[str, Any]],
) -> None:
    a, _, _ = nodes
    rid = str(uuid.uuid4())
    await a.client.get(f"{V2}/generate/check/{rid}")
    await a.client.get(f"{V2}/generate/check/{rid}", headers={"Horde-Wait": "10"})
    assert len(a.computed) == 2
    await a.client.get(f"{V2}/generate/check/{rid}")
    assert len(a.computed) == 2


async def test_a_request_change_drops_its_status_on_every_node(
    nodes: tuple[Node, Node, dict[str, Any]],
) -> None:
    a, b, db = nodes
    rid = uuid.uuid4()
    other = uuid.uuid4()
    for node in (a, b):
        await node.client.get(f"{V2}/generate/check/{rid}")
        await node.client.get(f"{V2}/generate/check/{other}")
    assert len(a.computed) == 2 and len(b.computed) == 2  # status: not shared through Redis
    db["teams"] = "changed"
    a.notifier.request_changed(rid)

    async def b_sees() -> bool:
        return bool((await b.client.get(f"{V2}/generate/check/{rid}")).json()["teams"] == "changed")

    await _until(b_sees, "node b drops the changed request's status")
    assert (await b.client.get(f"{V2}/generate/check/{other}")).json()["teams"] == "v1"


async def test_with_redis_down_the_local_tier_serves_alone() -> None:
    clock = FakeClock()
    health = RedisHealth()
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    cache = AnswerCache(client=dead, health=health, clock=clock.now, wall=clock.now)
    db: dict[str, Any] = {"teams": "v1"}
    holder: list[Node] = []
    app = _app(db, holder)
    app.state.horde = SimpleNamespace(cache=cache)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as http:
        holder.append(Node(http, cache, Notifier(), Answers(clock)))
        assert (await http.get(f"{V2}/teams")).json()["teams"] == "v1"
        assert not health.healthy
        db["teams"] = "v2"
        assert (await http.get(f"{V2}/teams")).json()["teams"] == "v1"  # the local copy
        cache.invalidate("teams")  # no Redis to tell: this node drops its own
        assert (await http.get(f"{V2}/teams")).json()["teams"] == "v2"
        clock.advance(1.01)  # and the local TTL bounds what no invalidation reaches
        db["teams"] = "v3"
        assert (await http.get(f"{V2}/teams")).json()["teams"] == "v3"
    await cache.close()


def test_the_heartbeat_is_dropped_when_redis_comes_and_goes() -> None:
    health = RedisHealth()
    cache = AnswerCache(health=health)
    dropped: list[list[str]] = []
    cache.on_dropped.append(dropped.append)
    health.failed(OSError("gone"))
    health.failed(OSError("still gone"))
    health.succeeded()
    health.succeeded()
    assert dropped == [["heartbeat"], ["heartbeat"]]


# -- through the horde's own routes ---------------------------------------------------------------


async def _worker(client: httpx.AsyncClient, key: str, name: str, path: str, body: dict[str, Any]) -> None:
    popped = await client.post(f"{V2}/{path}", json={"name": name, **body}, headers={"apikey": key})
    assert popped.status_code == 200, popped.text


async def test_worker_lists_by_type_are_cached_apart(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    await _worker(client, api_key, "cached image worker", "generate/pop", {"models": ["stable_diffusion"]})
    await _worker(client, api_key, "cached text worker", "generate/text/pop", {"models": ["text-model"]})
    for _ in range(2):
        text = (await client.get(f"{V2}/workers?type=text")).json()
        image = (await client.get(f"{V2}/workers?type=image")).json()
        assert [w["name"] for w in text] == ["cached text worker"]
        assert [w["name"] for w in image] == ["cached image worker"]
    scrape = generate_latest(REGISTRY).decode()
    assert 'horde_cache_hits_total{tier="local"}' in scrape
    assert "horde_cache_misses_total" in scrape


async def test_a_workers_private_fields_are_not_served_to_strangers(
    client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    await _worker(client, api_key, "private cached worker", "generate/pop", {"models": ["stable_diffusion"]})
    owner = (await client.get(f"{V2}/workers", headers={"apikey": api_key})).json()
    stranger = (await client.get(f"{V2}/workers")).json()
    assert owner[0]["name"] == stranger[0]["name"] == "private cached worker"
    assert owner != stranger  # the owner (a moderator) sees more
    hidden = set(owner[0]) - set(stranger[0]) or {k for k in owner[0] if owner[0][k] != stranger[0].get(k)}
    assert hidden
    assert (await client.get(f"{V2}/workers")).json() == stranger


async def test_a_team_rename_is_seen_at_once(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    made = await client.post(f"{V2}/teams", json={"name": "Cached Team"}, headers={"apikey": api_key})
    assert made.status_code == 200, made.text
    team_id = made.json()["id"]
    assert (await client.get(f"{V2}/teams/{team_id}")).json()["name"] == "Cached Team"
    assert [t["name"] for t in (await client.get(f"{V2}/teams")).json()] == ["Cached Team"]
    renamed = await client.patch(
        f"{V2}/teams/{team_id}", json={"name": "Renamed Team"}, headers={"apikey": api_key}
    )
    assert renamed.status_code == 200, renamed.text
    assert (await client.get(f"{V2}/teams/{team_id}")).json()["name"] == "Renamed Team"
    assert [t["name"] for t in (await client.get(f"{V2}/teams")).json()] == ["Renamed Team"]


def test_streams_and_other_routes_are_never_cached() -> None:
    rid = str(uuid.uuid4())
    assert match(f"{V2}/generate/status/{rid}/events") is None  # Server-Sent Events
    assert match(f"{V2}/generate/text/status/{rid}/events") is None
    assert match(f"{V2}/workers/messages") is None
    assert match("/v1/models") is None
    assert match(f"{V2}/find_user") is None  # the caller's live balance
    assert match(f"{V2}/users/1") is None
    found = match(f"{V2}/generate/text/status/{rid.upper()}")
    assert found is not None and found[1] == f"request:{rid}"
    assert match(f"{V2}/workers?type=text".split("?")[0]) is not None
