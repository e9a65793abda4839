"""The OpenAI-compatible API (/v1) driven by the official `openai` package, a scripted worker serving it.

The client is `openai.AsyncOpenAI` over the app in process; the worker pops and submits through the
native API and answers with what it was sent, so each test sees what the horde made of the call.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from horde.server.state import Horde
from tests.helpers import V2, webp_b64

GEMMA = "koboldcpp/gemma-3-270m-it"
OTHER = "koboldcpp/Qwen2.5-0.5B-Instruct"
Reply = Callable[[dict[str, Any]], str]


class ScriptedWorker:
    """Pops text jobs for `models` and submits `reply(payload)`; records every payload it was given."""

    def __init__(self, client: httpx.AsyncClient, key: str, models: list[str], reply: Reply) -> None:
        self.client, self.key, self.models, self.reply = client, key, models, reply
        self.payloads: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None  # set when it serves

    async def pop_once(self) -> dict[str, Any]:
        body = {"name": "openai scripted worker", "models": self.models, "max_length": 512}
        popped = await self.client.post(f"{V2}/generate/text/pop", json=body, headers={"apikey": self.key})
        assert popped.status_code == 200, popped.text
        result: dict[str, Any] = popped.json()
        return result

    async def run(self) -> None:
        while True:
            popped = await self.pop_once()
            if popped.get("id") is None:
                await asyncio.sleep(0.02)
                continue
            self.payloads.append(popped["payload"])
            answer = {"id": popped["id"], "generation": self.reply(popped["payload"])}
            submitted = await self.client.post(
                f"{V2}/generate/text/submit", json=answer, headers={"apikey": self.key}
            )
            assert submitted.status_code == 200, submitted.text


@pytest.fixture
async def serving(client: httpx.AsyncClient, api_key: str, horde: Horde) -> AsyncIterator[Any]:
    """Start a scripted worker (its reply given by the test) once its models show in /v1/models."""
    started: list[asyncio.Task[None]] = []

    async def start(reply: Reply, models: tuple[str, ...] = (GEMMA,)) -> ScriptedWorker:
        worker = ScriptedWorker(client, api_key, list(models), reply)
        await worker.pop_once()  # online from now on
        for _ in range(100):  # the queue snapshot shows it within its age (at most a second)
            listed = (await client.get("/v1/models")).json()["data"]
            if set(models) <= {card["id"] for card in listed}:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"{models} never listed in /v1/models")
        worker.task = asyncio.create_task(worker.run())
        started.append(worker.task)
        return worker

    yield start
    for task in started:
        task.cancel()


@pytest.fixture
def oai(client: httpx.AsyncClient, api_key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=api_key, base_url="http://testserver/v1", http_client=client, max_retries=0, timeout=30
    )


async def _kudos(client: httpx.AsyncClient, key: str) -> float:
    found = await client.get(f"{V2}/find_user", headers={"apikey": key})
    kudos: float = found.json()["kudos"]
    return kudos


async def test_chat_renders_the_family_template_and_cuts_at_its_stop(
    serving: Any, oai: openai.AsyncOpenAI, client: httpx.AsyncClient, api_key: str
) -> None:
    worker = await serving(lambda payload: " Paris.<end_of_turn>\n<start_of_turn>user\nmore")
    before = await _kudos(client, api_key)
    answer = await oai.chat.completions.create(
        model=GEMMA,
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Capital of France?"},
        ],
        max_tokens=40,
        temperature=0.5,
        stop=["\n\n"],
    )
    assert answer.object == "chat.completion" and answer.model == GEMMA
    assert [(c.index, c.message.role, c.message.content, c.finish_reason) for c in answer.choices] == [
        (0, "assistant", "Paris.", "stop")
    ]
    (payload,) = worker.payloads
    # gemma has no system turn: it is folded into the first user turn
    assert payload["prompt"] == (
        "<start_of_turn>user\nAnswer briefly.\n\nCapital of France?<end_of_turn>\n<start_of_turn>model\n"
    )
    assert payload["max_length"] == 40 and payload["temperature"] == 0.5
    assert payload["stop_sequence"] == ["\n\n", "<end_of_turn>"]
    assert await _kudos(client, api_key) < before  # charged as a native request


async def test_completions_with_several_choices(serving: Any, oai: openai.AsyncOpenAI) -> None:
    worker = await serving(lambda payload: f"{payload['prompt']} and then", models=(OTHER,))
    answer = await oai.completions.create(
        model=OTHER, prompt="Once upon a time", n=2, max_tokens=16, top_p=0.9
    )
    assert answer.object == "text_completion"
    assert sorted(c.index for c in answer.choices) == [0, 1]
    assert [c.text for c in answer.choices] == ["Once upon a time and then"] * 2
    assert {c.finish_reason for c in answer.choices} == {"length"}
    assert len(worker.payloads) == 2 and all(
        p["max_length"] == 16 and p["top_p"] == 0.9 for p in worker.payloads
    )


async def test_chatml_is_the_default_template(serving: Any, oai: openai.AsyncOpenAI) -> None:
    worker = await serving(lambda payload: "hi", models=(OTHER,))
    await oai.chat.completions.create(
        model=OTHER,
        messages=[{"role": "developer", "content": "Be kind."}, {"role": "user", "content": "Hello"}],
    )
    assert worker.payloads[0]["prompt"] == (
        "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    )
    assert worker.payloads[0]["stop_sequence"] == ["<|im_end|>"]


async def test_models_lists_what_online_workers_serve(serving: Any, oai: openai.AsyncOpenAI) -> None:
    await serving(lambda payload: "", models=(GEMMA, OTHER))
    listed = await oai.models.list()
    assert {model.id for model in listed.data} >= {GEMMA, OTHER}
    assert all(model.object == "model" and model.owned_by == "horde" for model in listed.data)


BAD_CHATS: list[tuple[dict[str, Any], type[openai.APIStatusError], str | None]] = [
    ({"messages": [{"role": "wizard", "content": "x"}]}, openai.BadRequestError, "messages[0].role"),
    ({"messages": [{"role": "system", "content": "x"}]}, openai.BadRequestError, "messages"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, openai.BadRequestError, "tools"),
    ({"stream": True}, openai.BadRequestError, "stream"),
    ({"n": 21}, openai.BadRequestError, "n"),
    ({"seed": 7}, openai.BadRequestError, "seed"),
    ({"presence_penalty": 0.5}, openai.BadRequestError, "presence_penalty"),
    ({"model": "nobody-serves-this"}, openai.NotFoundError, "model"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     openai.BadRequestError, "messages[0].content"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "error", "param"), BAD_CHATS)
async def test_bad_chats_get_openai_errors_and_queue_nothing(
    serving: Any,
    oai: openai.AsyncOpenAI,
    horde: Horde,
    change: dict[str, Any],
    error: type[Exception],
    param: str,
) -> None:
    worker = await serving(lambda payload: "never")
    body: dict[str, Any] = {"model": GEMMA, "messages": [{"role": "user", "content": "hi"}], **change}
    with pytest.raises(error) as raised:
        await oai.chat.completions.create(**body)
    assert isinstance(raised.value, openai.APIStatusError)
    detail = raised.value.body
    assert isinstance(detail, dict) and detail["param"] == param and detail["message"], detail
    assert detail["type"] in ("invalid_request_error", "not_found_error")
    await asyncio.sleep(0.1)
    assert worker.payloads == []


async def test_keys(client: httpx.AsyncClient, serving: Any) -> None:
    await serving(lambda payload: "x")
    body = {"model": GEMMA, "messages": [{"role": "user", "content": "hi"}]}
    missing = await client.post("/v1/chat/completions", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert missing.json()["error"]["code"] == "invalid_api_key"
    bad = openai.AsyncOpenAI(
        api_key="not-a-key", base_url="http://testserver/v1", http_client=client, max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as raised:
        await bad.chat.completions.create(**body)  # type: ignore[call-overload]
    assert raised.value.code == "InvalidAPIKey"


async def test_a_call_that_outlives_its_timeout_is_cancelled(
    serving: Any, client: httpx.AsyncClient, api_key: str, horde: Horde
) -> None:
    worker = await serving(lambda payload: "x")
    worker.task_paused = True
    horde.settings.openai_timeout = 0.3
    for task in asyncio.all_tasks():  # stop the scripted worker: nothing will serve the call
        if task.get_coro().__qualname__.startswith("ScriptedWorker.run"):  # type: ignore[union-attr]
            task.cancel()
    body = {"model": GEMMA, "messages": [{"role": "user", "content": "hi"}]}
    answer = await client.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert answer.status_code == 504, answer.text
    assert answer.json()["error"]["type"] == "server_error"
    popped = await worker.pop_once()  # the request was cancelled: there is nothing left to pop
    assert popped.get("id") is None, json.dumps(popped)


REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


async def _serve_images(client: httpx.AsyncClient, key: str, seen: list[dict[str, Any]]) -> None:
    """Pop image jobs and answer each with a 64x64 WebP (uploaded when the job has an upload URL)."""
    body = {"name": "openai image worker", "models": ["stable_diffusion"], "bridge_agent": REGEN, "amount": 4}
    while True:
        popped = (await client.post(f"{V2}/generate/pop", json=body, headers={"apikey": key})).json()
        if not popped.get("ids"):
            await asyncio.sleep(0.02)
            continue
        seen.append(popped)
        uploads = popped.get("r2_uploads") or [None] * len(popped["ids"])
        for job_id, upload in zip(popped["ids"], uploads, strict=True):
            generation = "R2"
            if upload is None:
                generation = webp_b64(64, 64)
            else:
                image = base64.b64decode(webp_b64())
                put = await client.put(upload.removeprefix("http://testserver"), content=image)
                assert put.status_code == 200
            answer = {"id": job_id, "generation": generation, "state": "ok", "seed": 1}
            submitted = await client.post(f"{V2}/generate/submit", json=answer, headers={"apikey": key})
            assert submitted.status_code == 200, submitted.text


@pytest.mark.parametrize("response_format", ["b64_json", "url"])
async def test_images(
    client: httpx.AsyncClient, api_key: str, oai: openai.AsyncOpenAI, response_format: str
) -> None:
    seen: list[dict[str, Any]] = []
    worker = asyncio.create_task(_serve_images(client, api_key, seen))
    try:
        answer = await oai.images.generate(
            prompt="a red square",
            n=2,
            size="64x64",
            response_format=response_format,  # type: ignore[arg-type]
        )
    finally:
        worker.cancel()
    assert answer.data is not None and len(answer.data) == 2
    payload = seen[0]["payload"]
    assert (payload["prompt"], payload["width"], payload["height"]) == ("a red square", 64, 64)
    for image in answer.data:
        if response_format == "b64_json":
            assert image.url is None and image.b64_json is not None
            raw = base64.b64decode(image.b64_json)
        else:
            assert image.b64_json is None and image.url is not None
            fetched = await client.get(image.url.removeprefix("http://testserver"))
            assert fetched.status_code == 200
            raw = fetched.content
        assert Image.open(io.BytesIO(raw)).size == (64, 64)


@pytest.mark.parametrize("size", ["100x100", "512", "axb", "4096x64"])
async def test_image_sizes_outside_the_horde_are_refused(oai: openai.AsyncOpenAI, size: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await oai.images.generate(prompt="x", size=size)  # type: ignore[arg-type]
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "size"
