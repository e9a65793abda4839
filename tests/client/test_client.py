"""The client over an httpx MockTransport: rc -> exception mapping, retries, long-poll, parsing.

These test the client's own logic; the server is not involved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from horde.client import (
    AbortedGen,
    AnonForbidden,
    BadRequest,
    BadResponse,
    DuplicateGen,
    Forbidden,
    HordeClient,
    HordeError,
    HordeUnreachable,
    InvalidAPIKey,
    KudosUpfront,
    NotFound,
    RateLimited,
    RequestRejected,
    RetryPolicy,
    ServerError,
    TooManyPrompts,
    ValidationFailed,
    WorkerMaintenance,
    api_root,
)
from horde.contract import GenerationInputKobold, PopInputKobold, SubmitInputKobold

Handler = Callable[[httpx.Request], httpx.Response]
JOB = "6f1d7a4e-0000-4000-8000-000000000001"
POP_EMPTY = {"payload": {}, "id": None, "ids": [], "skipped": {}}
STATUS = {
    "finished": 1, "processing": 0, "restarted": 0, "waiting": 0, "done": True, "faulted": False,
    "wait_time": 0, "queue_position": 0, "kudos": 3, "is_possible": True, "generations": [],
}  # fmt: skip


class Recorder:
    """A scripted horde: answers the given responses in order (the last one repeats) and records calls."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer


def _client(
    recorder: Recorder, *, attempts: int = 4, key: str | None = "secret"
) -> tuple[HordeClient, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = HordeClient(
        "http://horde.test",
        key,
        transport=httpx.MockTransport(recorder),
        retry=RetryPolicy(attempts=attempts, base=0.5, cap=4.0),
        sleep=sleep,
    )
    return client, sleeps


def _error(status: int, rc: str | None, message: str = "nope", **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"message": message, **extra}
    if rc is not None:
        body["rc"] = rc
    return httpx.Response(status, json=body)


def test_api_root_accepts_the_usual_spellings() -> None:
    for url in (
        "https://h.net",
        "https://h.net/",
        "https://h.net/api",
        "https://h.net/api/",
        "https://h.net/api/v2/",
    ):
        assert api_root(url) == "https://h.net/api/v2"


@pytest.mark.parametrize(
    ("status", "rc", "expected"),
    [
        (400, "DuplicateGen", DuplicateGen),
        (400, "AbortedGen", AbortedGen),
        (400, "MissingPrompt", BadRequest),
        (401, "InvalidAPIKey", InvalidAPIKey),
        (403, "KudosUpfront", KudosUpfront),
        (403, "AnonForbiddenWorker", AnonForbidden),
        (403, "WorkerMaintenance", WorkerMaintenance),
        (403, "NotModerator", Forbidden),
        (404, "RequestNotFound", NotFound),
        (404, "Image styleNotFound", NotFound),
        (404, "NotFound", NotFound),
        (429, "TooManyPrompts", TooManyPrompts),
    ],
)
async def test_rc_maps_to_its_exception(status: int, rc: str, expected: type[HordeError]) -> None:
    client, sleeps = _client(Recorder(_error(status, rc, "the reason")))
    with pytest.raises(expected) as caught:
        await client.text_async(GenerationInputKobold(prompt="hi"))
    assert caught.value.rc == rc and caught.value.status == status and caught.value.message == "the reason"
    assert isinstance(caught.value, RequestRejected)
    assert sleeps == []  # a refusal is never retried


async def test_schema_validation_failure_carries_the_fields() -> None:
    body = {"message": "Input payload validation failed", "errors": {"params.n": "too big"}}
    client, _ = _client(Recorder(httpx.Response(400, json=body)))
    with pytest.raises(ValidationFailed) as caught:
        await client.text_async(GenerationInputKobold(prompt="hi"))
    assert caught.value.errors == {"params.n": "too big"} and caught.value.rc == ""


async def test_api_key_and_agent_are_sent_and_body_is_the_contract_dump() -> None:
    recorder = Recorder(httpx.Response(202, json={"id": "abc", "kudos": 0}))
    client, _ = _client(recorder)
    accepted = await client.text_async(GenerationInputKobold(prompt="hi", params={"max_length": 32}))
    assert accepted.id == "abc"
    sent = recorder.requests[0]
    assert sent.url == "http://horde.test/api/v2/generate/text/async"
    assert sent.headers["apikey"] == "secret" and sent.headers["client-agent"].startswith("horde-client:")
    assert json.loads(sent.content)["params"]["max_length"] == 32


async def test_reads_retry_5xx_garbage_and_dropped_connections_then_succeed() -> None:
    recorder = Recorder(
        httpx.Response(500, json={"message": "boom"}),
        httpx.Response(200, content=b"<html>oops"),
        httpx.ReadError("reset"),
        httpx.Response(200, json=STATUS),
    )
    client, sleeps = _client(recorder)
    status = await client.text_status("r1")
    assert status.done and len(recorder.requests) == 4
    assert len(sleeps) == 3 and all(0 <= s <= 4.0 for s in sleeps)


async def test_retries_are_bounded() -> None:
    recorder = Recorder(httpx.Response(502, text="bad gateway"))
    client, sleeps = _client(recorder, attempts=3)
    with pytest.raises(ServerError) as caught:
        await client.text_status("r1")
    assert caught.value.status == 502 and caught.value.attempts == 3
    assert len(recorder.requests) == 3 and len(sleeps) == 2


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=10, base=0.5, cap=4.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # spread, not fixed


async def test_rate_limit_is_retried_honouring_retry_after_within_the_cap() -> None:
    limited = httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "3"})
    recorder = Recorder(limited, httpx.Response(202, json={"id": "abc"}))
    client, sleeps = _client(recorder)
    await client.text_async(GenerationInputKobold(prompt="hi"))  # even a new request: 429 means not processed
    assert len(recorder.requests) == 2 and sleeps[0] >= 3


async def test_rate_limit_without_rc_gives_up_after_the_retries() -> None:
    client, sleeps = _client(Recorder(httpx.Response(429, json={"message": "slow down"})), attempts=2)
    with pytest.raises(RateLimited) as caught:
        await client.text_status("r1")
    assert caught.value.rc == "" and caught.value.status == 429 and len(sleeps) == 1


async def test_new_request_is_not_retried_when_it_may_have_been_processed() -> None:
    for failure in (httpx.Response(500, json={"message": "boom"}), httpx.ReadTimeout("late")):
        recorder = Recorder(failure, httpx.Response(202, json={"id": "abc"}))
        client, _ = _client(recorder)
        with pytest.raises((ServerError, HordeUnreachable)):
            await client.text_async(GenerationInputKobold(prompt="hi"))
        assert len(recorder.requests) == 1


async def test_new_request_is_retried_when_it_was_never_sent() -> None:
    recorder = Recorder(
        httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(202, json={"id": "a"})
    )
    client, _ = _client(recorder)
    assert (await client.text_async(GenerationInputKobold(prompt="hi"))).id == "a"
    assert len(recorder.requests) == 3


async def test_pop_with_garbage_answer_is_not_retried() -> None:
    recorder = Recorder(httpx.Response(200, content=b"{not json"), httpx.Response(200, json=POP_EMPTY))
    client, _ = _client(recorder)
    with pytest.raises(BadResponse):
        await client.text_pop(PopInputKobold(name="a worker"))
    assert len(recorder.requests) == 1


async def test_answer_that_breaks_the_contract_is_a_bad_response() -> None:
    client, _ = _client(Recorder(httpx.Response(200, json={"finished": "many"})), attempts=1)
    with pytest.raises(BadResponse, match="finished"):
        await client.text_status("r1")


async def test_submit_retried_after_a_lost_answer_treats_duplicate_as_success() -> None:
    recorder = Recorder(
        httpx.ReadTimeout("answer lost"),  # the first try landed; its answer did not
        _error(400, "DuplicateGen"),
    )
    client, _ = _client(recorder)
    result = await client.text_submit(SubmitInputKobold(id=JOB, generation="text"))
    assert result.already_submitted is True and result.reward == 0
    assert len(recorder.requests) == 2
    assert [json.loads(r.content)["id"] for r in recorder.requests] == [JOB, JOB]


async def test_submit_retries_5xx_and_garbage() -> None:
    recorder = Recorder(
        httpx.Response(500, json={"message": "boom"}),
        httpx.Response(200, content=b"garbage"),
        _error(400, "DuplicateGen"),
    )
    client, _ = _client(recorder)
    assert (await client.text_submit(SubmitInputKobold(id=JOB, generation="t"))).already_submitted


async def test_first_try_duplicate_is_an_error() -> None:
    client, _ = _client(Recorder(_error(400, "DuplicateGen")))
    with pytest.raises(DuplicateGen):
        await client.text_submit(SubmitInputKobold(id=JOB, generation="t"))


async def test_submit_success_reports_the_reward() -> None:
    client, _ = _client(Recorder(httpx.Response(200, json={"reward": 4.5})))
    result = await client.text_submit(SubmitInputKobold(id=JOB, generation="t"))
    assert result.reward == 4.5 and not result.already_submitted


async def test_long_poll_header_is_sent_and_support_is_detected() -> None:
    plain = Recorder(httpx.Response(200, json=POP_EMPTY))
    client, _ = _client(plain)
    await client.text_pop(PopInputKobold(name="a worker"), wait=15)
    assert plain.requests[0].headers["horde-wait"] == "15"
    assert client.long_poll_supported is False
    supported = Recorder(httpx.Response(200, json=POP_EMPTY, headers={"Horde-Wait-Supported": "1"}))
    client, _ = _client(supported)
    await client.text_pop(PopInputKobold(name="a worker"), wait=15)
    assert client.long_poll_supported is True


async def test_wait_falls_back_to_polling_when_the_server_ignores_long_poll() -> None:
    waiting = {**STATUS, "done": False, "finished": 0, "waiting": 1}
    recorder = Recorder(
        httpx.Response(200, json=waiting), httpx.Response(200, json=waiting), httpx.Response(200, json=STATUS)
    )
    client, sleeps = _client(recorder)
    status = await client.text_wait("r1", poll_interval=1.5, wait=10)
    assert status.done and sleeps == [1.5, 1.5]
    assert all(r.headers["horde-wait"] == "10" for r in recorder.requests)


async def test_wait_does_not_poll_when_the_server_long_polls() -> None:
    waiting = {**STATUS, "done": False}
    held = {"Horde-Wait-Supported": "1"}
    recorder = Recorder(
        httpx.Response(200, json=waiting, headers=held), httpx.Response(200, json=STATUS, headers=held)
    )
    client, sleeps = _client(recorder)
    assert (await client.text_wait("r1", poll_interval=5)).done
    assert len(sleeps) == 1 and sleeps[0] <= 0.2  # no poll interval: only a floor against a hot loop


async def test_upload_and_download_do_not_leak_the_api_key() -> None:
    recorder = Recorder(httpx.Response(200), httpx.Response(200, content=b"\x89PNG"))
    client, _ = _client(recorder)
    await client.upload("http://bucket.test/put?sig=1", b"webp-bytes")
    assert await client.download("http://bucket.test/get?sig=2") == b"\x89PNG"
    assert all("apikey" not in r.headers for r in recorder.requests)
    assert recorder.requests[0].method == "PUT" and recorder.requests[0].content == b"webp-bytes"


async def test_lists_parse() -> None:
    worker = {
        "type": "text", "name": "w1", "id": JOB, "online": True, "requests_fulfilled": 1,
        "kudos_rewards": 2, "performance": "1 tokens per second", "threads": 1, "uptime": 5,
        "maintenance_mode": False, "nsfw": True, "trusted": False, "flagged": False, "uncompleted_jobs": 0,
        "bridge_agent": "horde-worker:0:x",
    }  # fmt: skip
    recorder = Recorder(httpx.Response(200, json=[worker]))
    client, _ = _client(recorder)
    workers = await client.workers("text", name="w1")
    assert workers[0].name == "w1"
    assert recorder.requests[0].url.params == httpx.QueryParams({"type": "text", "name": "w1"})


async def test_kudos_transfer_retries_under_one_idempotency_key() -> None:
    recorder = Recorder(httpx.ReadTimeout("answer lost"), httpx.Response(200, json={"transferred": 50}))
    client, _ = _client(recorder)
    assert await client.transfer_kudos("alice#2", 50) == 50
    keys = {r.headers["idempotency-key"] for r in recorder.requests}
    assert len(recorder.requests) == 2 and len(keys) == 1
    assert json.loads(recorder.requests[0].content) == {"username": "alice#2", "amount": 50}
