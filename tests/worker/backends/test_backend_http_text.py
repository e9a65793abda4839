"""The OpenAI- and KoboldAI-compatible text backends against a fake server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from horde.worker.backends import (
    BackendTimeout,
    BackendUnavailable,
    BackendUnreachable,
    BadBackendResponse,
    JobFailed,
    TextBackend,
    TextParams,
)
from horde.worker.backends.text import KoboldBackend, OpenAIBackend

PARAMS = TextParams.from_payload(
    {
        "prompt": "ignored here",
        "n": 1,
        "max_length": 40,
        "max_context_length": 1024,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 30,
        "top_a": 0.2,
        "typical": 0.95,
        "tfs": 0.9,
        "min_p": 0.05,
        "rep_pen": 1.15,
        "rep_pen_range": 300,
        "rep_pen_slope": 0.7,
        "sampler_order": [6, 0, 1, 3, 4, 2, 5],
        "stop_sequence": ["\nYou:"],
        "seed": 1234,
        "frmtrmspch": True,
    }
)


def openai_routes(text: str = "Hello there #friend") -> dict[str, Any]:
    return {
        "GET /v1/models": lambda s, b: (200, {"object": "list", "data": [{"id": "tiny-model"}]}),
        "POST /v1/completions": lambda s, b: (
            200,
            {"choices": [{"text": text, "finish_reason": "length"}], "usage": {"completion_tokens": 5}},
        ),
    }


def kobold_routes(text: str = "Once upon a {time}") -> dict[str, Any]:
    return {
        "GET /api/v1/model": lambda s, b: (200, {"result": "koboldcpp/Tiny-7B"}),
        "POST /api/v1/generate": lambda s, b: (200, {"results": [{"text": text}]}),
    }


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_openai_sends_mapped_fields_and_reports_dropped(fake_server: Any) -> None:
    server = fake_server(openai_routes())
    backend = OpenAIBackend(server.url, api_key="sk-test")
    await backend.load()
    assert isinstance(backend, TextBackend)
    assert backend.models == ("tiny-model",)

    result = await backend.generate("The prompt", PARAMS)

    (body,) = server.bodies("/v1/completions")
    assert body["model"] == "tiny-model"
    assert body["prompt"] == "The prompt"
    assert body["max_tokens"] == 40
    assert body["temperature"] == 0.5
    assert body["top_p"] == 0.9
    assert body["top_k"] == 30
    assert body["min_p"] == 0.05
    assert body["typical_p"] == 0.95
    assert body["repetition_penalty"] == body["repeat_penalty"] == 1.15
    assert body["repeat_last_n"] == 300
    assert body["stop"] == ["\nYou:"]
    assert body["seed"] == 1234
    assert body["n"] == 1
    assert "top_a" not in body
    assert "tfs" not in body
    assert result.text == "Hello there friend"  # frmtrmspch applied
    assert result.seed == 1234
    assert result.tokens == 5
    dropped = {n.field for n in result.notes if n.how == "dropped"}
    assert dropped == {"top_a", "tfs", "rep_pen_slope", "max_context_length"}
    (meta,) = result.gen_metadata()
    assert meta["type"] == "information"
    assert "top_a" in meta["ref"]
    await backend.close()


async def test_openai_configured_model_must_exist(fake_server: Any) -> None:
    server = fake_server(openai_routes())
    backend = OpenAIBackend(server.url, model="other-model")
    with pytest.raises(BackendUnavailable, match="other-model"):
        await backend.load()
    await backend.close()


async def test_kobold_passes_every_sampler_through(fake_server: Any) -> None:
    server = fake_server(kobold_routes())
    backend = KoboldBackend(server.url)
    await backend.load()
    assert backend.models == ("koboldcpp/Tiny-7B",)

    result = await backend.generate("Story:", PARAMS)

    (body,) = server.bodies("/api/v1/generate")
    assert body["prompt"] == "Story:"
    assert body["sampler_seed"] == 1234
    for name in ("max_length", "max_context_length", "top_a", "tfs", "rep_pen_slope", "sampler_order"):
        assert body[name] == getattr(PARAMS, name), name
    assert body["stop_sequence"] == ["\nYou:"]
    assert "dynatemp_range" not in body  # not set in the request, so not sent
    assert result.text == "Once upon a time"
    assert result.notes == ()
    await backend.close()


async def test_random_seed_is_reported_and_sent(fake_server: Any) -> None:
    server = fake_server(kobold_routes())
    backend = KoboldBackend(server.url, models=["my/name"])
    await backend.load()
    assert backend.models == ("my/name",)
    result = await backend.generate("x", TextParams())
    assert server.bodies("/api/v1/generate")[0]["sampler_seed"] == result.seed
    await backend.close()


@pytest.mark.parametrize("make", [OpenAIBackend, KoboldBackend])
async def test_server_down(make: Any) -> None:
    backend = make(closed_port_url(), model="m") if make is OpenAIBackend else make(closed_port_url())
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await backend.load()
    with pytest.raises(BackendUnreachable):
        await backend.generate("x", TextParams())
    await backend.close()


@pytest.mark.parametrize("kind", ["openai", "kobold"])
async def test_server_that_hangs_times_out(fake_server: Any, kind: str) -> None:
    routes = openai_routes() if kind == "openai" else kobold_routes()
    path = "POST /v1/completions" if kind == "openai" else "POST /api/v1/generate"
    routes[path] = lambda s, b: s.hang(b)
    server = fake_server(routes)
    backend: Any = (
        OpenAIBackend(server.url, timeout=0.5) if kind == "openai" else KoboldBackend(server.url, timeout=0.5)
    )
    await backend.load()
    with pytest.raises(BackendTimeout) as caught:
        await backend.generate("x", TextParams())
    assert isinstance(caught.value, JobFailed)
    await backend.close()


async def test_error_status_and_bad_body(fake_server: Any) -> None:
    routes = kobold_routes()
    routes["POST /api/v1/generate"] = lambda s, b: (503, {"detail": {"msg": "Server is busy"}})
    server = fake_server(routes)
    backend = KoboldBackend(server.url)
    await backend.load()
    with pytest.raises(BadBackendResponse, match="503"):
        await backend.generate("x", TextParams())
    server.routes["POST /api/v1/generate"] = lambda s, b: (200, {"results": []})
    with pytest.raises(BadBackendResponse, match="results"):
        await backend.generate("x", TextParams())
    server.routes["POST /api/v1/generate"] = lambda s, b: (200, b"<html>")
    with pytest.raises(BadBackendResponse, match="not JSON"):
        await backend.generate("x", TextParams())
    await backend.close()


async def test_kobold_without_model_is_unavailable(fake_server: Any) -> None:
    routes = kobold_routes()
    routes["GET /api/v1/model"] = lambda s, b: (200, {"result": "ReadOnly"})
    backend = KoboldBackend(fake_server(routes).url)
    with pytest.raises(BackendUnavailable, match="no model loaded"):
        await backend.load()
    await backend.close()


async def test_openai_puts_back_the_stop_sequence_the_server_stripped(fake_server: Any) -> None:
    routes = openai_routes()
    routes["POST /v1/completions"] = lambda s, b: (
        200,
        {"choices": [{"text": "Bob: hi", "finish_reason": "stop", "stop_reason": "\nYou:"}]},
    )
    server = fake_server(routes)
    backend = OpenAIBackend(server.url)
    await backend.load()
    result = await backend.generate("x", TextParams(stop_sequence=["\nYou:"]))
    assert result.text == "Bob: hi\nYou:"
    assert server.bodies("/v1/completions")[0]["include_stop_str_in_output"] is True
    await backend.close()
