"""`/metrics` and request ids: the named series exist, and move when the horde does something."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from horde.server.observe.logs import configure_logging
from horde.server.observe.metrics import REGISTRY
from horde.server.observe.middleware import ObserveMiddleware
from horde.server.scheduler import Scheduler, Task
from horde.server.state import Horde
from tests.helpers import V2

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

POP_ROUTE = "/api/v2/generate/text/pop"


async def _scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@ON_POSTGRESQL
async def test_series_exist_and_move(client: httpx.AsyncClient, api_key: str) -> None:
    headers = {"apikey": api_key}
    before = await _scrape(client)
    for name in ("horde_queue_depth", "horde_workers_online", "horde_db_pool_connections"):
        assert any(key[0] == name for key in before), name
    pop = {"name": "metrics worker", "models": ["koboldcpp/m"], "max_length": 512, "max_context_length": 2048}
    assert (await client.post(f"{V2}/generate/text/pop", json=pop, headers=headers)).json()["id"] is None
    body = {"prompt": "hi", "params": {"max_length": 16}, "models": ["koboldcpp/m"]}
    assert (await client.post(f"{V2}/generate/text/async", json=body, headers=headers)).status_code == 202
    middle = await _scrape(client)
    assert (
        _value(middle, "horde_queue_depth", kind="text")
        == _value(before, "horde_queue_depth", kind="text") + 1
    )
    assert _value(middle, "horde_workers_online", kind="text") >= 1
    assert (await client.post(f"{V2}/generate/text/pop", json=pop, headers=headers)).json()["id"]
    after = await _scrape(client)
    for outcome in ("empty", "job"):
        moved = _value(after, "horde_pops_total", kind="text", outcome=outcome)
        assert moved == _value(before, "horde_pops_total", kind="text", outcome=outcome) + 1, outcome
    assert _value(after, "horde_queue_depth", kind="text") == _value(before, "horde_queue_depth", kind="text")
    count = "horde_http_request_duration_seconds_count"
    labels = {"method": "POST", "route": POP_ROUTE, "status": "200"}
    assert _value(after, count, **labels) == _value(before, count, **labels) + 2
    assert _value(after, "horde_db_pool_connections", state="size") >= 1


@ON_POSTGRESQL
async def test_skipped_reasons_are_counted(client: httpx.AsyncClient, api_key: str) -> None:
    headers = {"apikey": api_key}
    body = {"prompt": "long", "params": {"max_length": 512}, "models": ["koboldcpp/m"]}
    assert (await client.post(f"{V2}/generate/text/async", json=body, headers=headers)).status_code == 202
    before = await _scrape(client)
    pop = {"name": "small worker", "models": ["koboldcpp/m"], "max_length": 80, "max_context_length": 1024}
    answer = (await client.post(f"{V2}/generate/text/pop", json=pop, headers=headers)).json()
    assert answer["id"] is None
    assert answer["skipped"], answer  # the reason the worker is told, counted under the same name
    after = await _scrape(client)
    for reason, count in answer["skipped"].items():
        moved = _value(after, "horde_pop_skipped_total", kind="text", reason=reason)
        assert moved == _value(before, "horde_pop_skipped_total", kind="text", reason=reason) + count


@ON_POSTGRESQL
async def test_unknown_paths_share_one_series(client: httpx.AsyncClient) -> None:
    await client.get("/no/such/path/1")
    await client.get("/no/such/path/2")
    text = (await client.get("/metrics")).text
    assert "/no/such/path" not in text
    assert 'route="unmatched",status="404"' in text


@ON_POSTGRESQL
@pytest.mark.committed  # the scheduler takes session advisory locks and commits on its own connection
async def test_scheduled_task_durations_and_failures(client: httpx.AsyncClient, horde: Horde) -> None:
    ran, failed = asyncio.Event(), asyncio.Event()

    async def works(_: Horde) -> int:
        ran.set()
        return 1

    async def fails(_: Horde) -> int:
        failed.set()
        raise RuntimeError("boom")

    before = await _scrape(client)
    scheduler = Scheduler(
        horde, (Task("metrics_ok", lambda _: 60, works), Task("metrics_bad", lambda _: 60, fails))
    )
    scheduler.start()
    await asyncio.wait_for(asyncio.gather(ran.wait(), failed.wait()), 10)
    failures = "horde_scheduled_task_failures_total"
    counted = _value(before, failures, task="metrics_bad") + 1
    for _ in range(500):  # the failed round still releases its advisory lock before it is counted
        if REGISTRY.get_sample_value(failures, {"task": "metrics_bad"}) == counted:
            break
        await asyncio.sleep(0.01)
    await scheduler.stop()
    after = await _scrape(client)
    name = "horde_scheduled_task_duration_seconds_count"
    assert _value(after, name, task="metrics_ok") == _value(before, name, task="metrics_ok") + 1
    assert _value(after, failures, task="metrics_bad") == _value(before, failures, task="metrics_bad") + 1


async def test_every_log_line_of_a_request_carries_its_id(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("horde.test")

    async def endpoint(request: Request) -> PlainTextResponse:
        log.info("first line")
        await asyncio.sleep(0)
        log.warning("second line", extra={"ignored": True})
        return PlainTextResponse("ok")

    app = ObserveMiddleware(Starlette(routes=[Route("/x", endpoint)]), metrics=False)
    configure_logging("json")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            given = await http.get("/x", headers={"X-Request-Id": "lb-1234"})
            fresh = await http.get("/x", headers={"X-Request-Id": "bad id"})
        log.info("outside any request")
    finally:
        logging.getLogger().handlers.clear()
    assert given.headers["x-request-id"] == "lb-1234"
    assert len(fresh.headers["x-request-id"]) == 32  # an unusable id is replaced, not echoed
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    ids = [line.get("request_id") for line in lines if line["logger"] == "horde.test"]
    assert ids == ["lb-1234", "lb-1234", fresh.headers["x-request-id"], fresh.headers["x-request-id"], None]
    assert {line["level"] for line in lines} >= {"info", "warning"}
    assert all(line["timestamp"].endswith("Z") for line in lines)
