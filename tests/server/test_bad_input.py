"""Bad input gets a 4xx with the reference's rc (or its validation body) and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from horde.server.state import Horde
from tests.helpers import V2, png_b64, row_counts

VALIDATION = "Input payload validation failed"


def image(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": "a cat", "params": {"n": 1}}
    body.update(fields)
    return body


CASES: list[tuple[str, dict[str, Any] | None, int, str | None]] = [
    ("missing prompt", {"params": {"n": 1}}, 400, None),
    ("empty prompt", image(prompt=""), 400, None),  # the swagger says minLength 1: a schema error
    ("blank negative-only prompt", image(prompt="   ### ugly"), 400, "MissingPrompt"),
    ("n = 0", image(params={"n": 0}), 400, None),
    ("n = 21", image(params={"n": 21}), 400, None),
    ("width not a multiple of 64", image(params={"width": 500}), 400, None),
    ("too many steps", image(params={"steps": 501}), 400, None),
    ("unknown sampler", image(params={"sampler_name": "k_nonsense"}), 400, None),
    ("broken base64 source", image(source_image="not*base64!"), 400, "ImageValidationFailed"),
    ("source that is not an image", image(source_image="aGVsbG8gd29ybGQ="), 400, "ImageValidationFailed"),
    ("100,000-word prompt", image(prompt="word " * 100_000), 400, "InvalidPromptSize"),
    ("wrong JSON types", image(params={"n": "many"}), 400, None),
    ("nsfw not a boolean", image(nsfw={"a": 1}), 400, None),
    ("mask without source", image(source_mask=png_b64()), 400, "SourceMaskUnnecessary"),
    ("two upscalers", image(params={"post_processing": ["RealESRGAN_x4plus", "RealESRGAN_x2plus"]}), 400,
     "TooManyUpscalers"),
    ("cfg with three decimals", image(params={"cfg_scale": 7.125}), 400, "BadCFGDecimals"),
    ("an unknown style", image(style="my style"), 404, "StyleNotFound"),
    ("unknown target worker", image(workers=["00000000-0000-0000-0000-000000000000"]), 404, "WorkerNotFound"),
    ("a model name of 300 characters", image(models=["m" * 300]), 400, "BadRequest"),
    ("a thousand models", image(models=[f"model {i}" for i in range(1000)]), 400, "BadRequest"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "status", "rc"), CASES, ids=[c[0] for c in CASES])
async def test_bad_image_request(
    client: httpx.AsyncClient,
    api_key: str,
    horde: Horde,
    name: str,
    body: dict[str, Any],
    status: int,
    rc: str | None,
) -> None:
    response = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": api_key})
    assert response.status_code == status, response.text
    data = response.json()
    if rc is None:
        assert data["message"] == VALIDATION
        assert data["errors"]
    else:
        assert data["rc"] == rc
    assert "Traceback" not in response.text
    assert await row_counts(horde) == (0, 0)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'[{"prompt": "a cat"}]', "application/json"),
        (b"\xff\xfe{not utf-8", "application/json"),
        (b'{"prompt": "a cat', "application/json"),
        (b"prompt=a+cat", "application/x-www-form-urlencoded"),
    ],
    ids=["array", "not utf-8", "truncated", "form encoded"],
)
async def test_unparsable_bodies(
    client: httpx.AsyncClient, api_key: str, horde: Horde, content: bytes, content_type: str
) -> None:
    headers = {"apikey": api_key, "content-type": content_type}
    response = await client.post(f"{V2}/generate/text/async", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == VALIDATION
    assert await row_counts(horde) == (0, 0)


async def test_odd_seeds_are_accepted(client: httpx.AsyncClient, api_key: str) -> None:
    for seed in ("9" * 5000, "\u00b9\u00b2", "the little seed that could"):
        response = await client.post(
            f"{V2}/generate/async", json=image(params={"seed": seed}), headers={"apikey": api_key}
        )
        assert response.status_code == 202, response.text


async def test_nul_byte_in_url(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{V2}/workers", params={"name": "a\x00b"})
    assert response.status_code == 400
    assert response.json()["rc"] == "NulByteInPayload"


async def test_nul_byte_in_prompt(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    body = {"prompt": "a cat\u0000", "params": {"n": 1}}
    response = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    assert response.status_code == 400
    assert response.json()["rc"] == "NulByteInPayload"
    assert await row_counts(horde) == (0, 0)


async def test_private_source_url_refused(horde: Horde, api_key: str) -> None:
    from horde.server.app import create_app

    horde.settings.allow_private_source_urls = False
    transport = httpx.ASGITransport(app=create_app(horde.settings, horde=horde), client=("127.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = image(source_image="http://127.0.0.1:9/cat.png")
        response = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": api_key})
    assert response.status_code == 400
    assert response.json()["rc"] == "SourceImageUrlInvalid"
    assert await row_counts(horde) == (0, 0)


async def test_text_limits(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    cases = [
        ({"prompt": "hi", "params": {"max_length": 512, "max_context_length": 256}}, "TokenOverflow"),
        ({"prompt": "hi", "params": {"sampler_order": [1, 2, 3]}}, "MissingFullSamplerOrder"),
        ({"prompt": ""}, "MissingPrompt"),
    ]
    for body, rc in cases:
        response = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
        assert response.status_code == 400, response.text
        assert response.json()["rc"] == rc
    assert await row_counts(horde) == (0, 0)


async def test_concurrency_cap(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    body = {"prompt": "hi", "params": {"n": 20}}
    for _ in range(1):
        ok = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
        assert ok.status_code == 202
    over = await client.post(f"{V2}/generate/text/async", json=body, headers={"apikey": api_key})
    assert over.status_code == 429
    assert over.json()["rc"] == "TooManyPrompts"
    assert await row_counts(horde) == (1, 20)


async def test_worker_side_refusals(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    anon = await client.post(
        f"{V2}/generate/text/pop", json={"name": "anon worker"}, headers={"apikey": "0000000000"}
    )
    assert anon.status_code == 403
    assert anon.json()["rc"] == "AnonForbiddenWorker"
    many = {"name": "greedy worker", "models": [f"model-{i}" for i in range(1000)]}
    response = await client.post(f"{V2}/generate/text/pop", json=many, headers={"apikey": api_key})
    assert response.status_code == 400
    assert response.json()["rc"] == "BadRequest" and "models" in response.json()["message"]
    unknown = await client.post(
        f"{V2}/generate/text/submit", json={"id": "7f1c1a9e-0000-4000-8000-000000000000", "generation": "x"},
        headers={"apikey": api_key},
    )  # fmt: skip
    assert unknown.status_code == 404
    assert unknown.json()["rc"] == "InvalidJobID"
    bad_key = await client.post(
        f"{V2}/generate/text/pop", json={"name": "x worker"}, headers={"apikey": "nope"}
    )
    assert bad_key.status_code == 401
    assert bad_key.json()["rc"] == "InvalidAPIKey"


async def test_submit_from_another_users_worker(client: httpx.AsyncClient, api_key: str) -> None:
    await client.post(f"{V2}/generate/text/async", json={"prompt": "hi"}, headers={"apikey": api_key})
    popped = (
        await client.post(
            f"{V2}/generate/text/pop", json={"name": "owner worker"}, headers={"apikey": api_key}
        )
    ).json()
    other = (
        await client.post(f"{V2}/dev/test-user", json={"oauth_id": "someone-else", "username": "eve"})
    ).json()
    stolen = await client.post(
        f"{V2}/generate/text/submit", json={"id": popped["id"], "generation": "mine"},
        headers={"apikey": other["api_key"]},
    )  # fmt: skip
    assert stolen.status_code == 403
    assert stolen.json()["rc"] == "WrongCredentials"
    honest = await client.post(
        f"{V2}/generate/text/submit",
        json={"id": popped["id"], "generation": "ok"},
        headers={"apikey": api_key},
    )
    assert honest.status_code == 200
    assert honest.json()["reward"] > 0
