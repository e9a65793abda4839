"""The claim's SQL conditions and their Python twin (`matching.skip_reason`) agree on every pair.

They must: an empty pop is answered from the queue snapshot, without a claim, when the Python twin
says no queued request fits the worker. A request the SQL would hand to a worker but the twin refuses
would never be popped while the snapshot is fresh. Requests of varied constraints are queued through
the API; workers of varied profiles are built directly; for every pair the claim's own conditions are
run in SQL, restricted to that request, and compared with the twin.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from horde.server.jobs import matching
from horde.server.jobs.matching.conditions import jobs, requests
from horde.server.jobs.records import QueuedRequest, WorkerProfile
from horde.server.jobs.snapshot import load_queue
from horde.server.state import Horde
from horde.server.workers.capabilities import ALL_CAPS, Cap
from tests.helpers import V2, png_b64

UNSAFE = "from an unsafe IP"  # marked so after queueing: the client's IP is the same for all requests
ANONYMOUS = "_anonymous"  # queue this one as the anonymous user (never covered upfront, ADR 0023)
TEXT_REQUESTS: list[dict[str, Any]] = [
    {"prompt": "plain"},
    {"prompt": "named", "models": ["model-a"]},
    {"prompt": "two names", "models": ["model-a", "model-b"]},
    {"prompt": "long", "params": {"max_length": 400, "max_context_length": 4000}},
    {"prompt": "trusted only", "trusted_workers": True},
    {"prompt": "no slow workers", "slow_workers": False},
    {"prompt": "extra slow welcome", "extra_slow_workers": True},
    {"prompt": "a dragon story"},
    {"prompt": "for worker one", "workers": ["{w1}"]},
    {"prompt": "not worker one", "workers": ["{w1}"], "worker_blacklist": True},
    {"prompt": "with a softprompt", "softprompt": "Fantasy_v2"},
    {"prompt": "with another softprompt", "softprompt": "scifi"},
    {"prompt": "anonymous, so not paid upfront", ANONYMOUS: True},
]
IMAGE_REQUESTS: list[dict[str, Any]] = [
    {"prompt": "plain", "r2": False},
    {"prompt": "big", "params": {"width": 1024, "height": 1024}, "r2": False},
    {"prompt": "stored", "r2": True},
    {"prompt": "nsfw", "nsfw": True, "r2": False},
    {"prompt": "named", "models": ["model-a"], "r2": False},
    {"prompt": "upscaled", "params": {"post_processing": ["RealESRGAN_x4plus"]}, "r2": False},
    {"prompt": "img2img", "source_image": png_b64(), "r2": False},
    {"prompt": "a dragon", "r2": False},
    {"prompt": "for worker one", "workers": ["{w1}"], "r2": False},
    {"prompt": "trusted only", "trusted_workers": True, "r2": False},
    {"prompt": "many steps", "models": ["model-a"], "params": {"steps": 50}, "r2": False},
    {"prompt": "average steps", "models": ["model-a"], "params": {"steps": 30}, "r2": False},
    {"prompt": "many steps, any model", "params": {"steps": 50}, "r2": False},
    {"prompt": UNSAFE, "r2": False},
    {
        "prompt": "an SDXL QR code",
        "models": ["SDXL 1.0"],
        "r2": False,
        "params": {
            "workflow": "qr_code",
            "extra_texts": [{"text": "https://example.org", "reference": "qr_code"}],
        },
    },
    {"prompt": "anonymous, so not paid upfront", "r2": False, ANONYMOUS: True},
]
ALCHEMY_REQUESTS: list[dict[str, Any]] = [
    {"forms": [{"name": "caption"}], "source_image": png_b64()},
    {"forms": [{"name": "nsfw"}, {"name": "RealESRGAN_x4plus"}], "source_image": png_b64()},
    {"forms": [{"name": "caption"}], "source_image": png_b64(), "trusted_workers": True},
]


def _profiles(kind: str, w1: uuid.UUID) -> list[WorkerProfile]:
    """Workers that differ in one respect at a time, and a few in several."""
    base = {
        "worker_id": uuid.uuid4(), "owner_id": 1, "kind": kind, "owner_trusted": True, "caps": int(ALL_CAPS)
    }  # fmt: skip
    variants: list[dict[str, Any]] = [
        {},
        {"worker_id": w1},
        {"owner_trusted": False},
        {"slow": True},
        {"extra_slow": True},
        {"caps": 0},
        {"caps": int(Cap.R2 | Cap.IMG2IMG)},
        {"blacklist": ("dragon",)},
        {"blacklist": ("dragon",), "worker_id": w1, "owner_trusted": False},
        {"require_upfront_kudos": kind != "alchemy"},
    ]
    if kind == "text":
        variants += [
            {"models": frozenset({"model-a"})},
            {"models": frozenset({"model-b", "model-c"})},
            {"models": frozenset({"model-z"})},
            {"max_length": 80, "max_context_length": 1024},
            {"max_length": 512, "max_context_length": 4096},
            {"softprompts": ("fantasy",)},
            {"softprompts": ("fantasy_v2", "scifi")},
            {"softprompts": ("",)},
            {"softprompts": ("fantasy%",)},  # LIKE's wildcards are the worker's literal text
        ]
    elif kind == "image":
        variants += [
            {"models": frozenset({"model-a"}), "max_pixels": 1024 * 1024},
            {"models": frozenset({"model-z"})},
            {"max_pixels": 1024 * 1024},
            {"nsfw": False},
            {"limit_max_steps": True},
            {"limit_max_steps": True, "models": frozenset({"model-a"})},
            {"allow_unsafe_ip": False},
            {"caps": int(ALL_CAPS & ~Cap.SDXL_CONTROLNET), "models": frozenset({"SDXL 1.0"})},
            {"models": frozenset({"horde_special::ada#1", "model-a"}), "serves_special": True},
            {"models": frozenset({"horde_special::ada#1"}), "serves_special": True},
        ]
    else:
        variants += [
            {"forms": frozenset({"caption"})},
            {"forms": frozenset({"nsfw"})},
            {"forms": frozenset({"RealESRGAN_x4plus", "caption"})},
            {"forms": frozenset()},
        ]
    defaults: dict[str, Any] = {"forms": frozenset({"caption", "nsfw"})} if kind == "alchemy" else {}
    return [WorkerProfile(**{**base, **defaults, **variant}) for variant in variants]


def _fill(body: dict[str, Any], w1: uuid.UUID) -> dict[str, Any]:
    workers = body.get("workers")
    return {**body, "workers": [str(w1)]} if workers else body


async def _queued(horde: Horde, kind: str) -> list[QueuedRequest]:
    async with horde.db.autocommit() as conn:
        return await load_queue(conn, kind, lambda _kind, _payload: 1.0, {})


async def _sql_fits(horde: Horde, w: WorkerProfile, request_id: uuid.UUID) -> bool:
    statement = (
        select(jobs.c.id)
        .select_from(jobs.join(requests, requests.c.id == jobs.c.request_id))
        .where(*matching.match_filters(w), jobs.c.request_id == request_id)
        .limit(1)
    )
    async with horde.db.autocommit() as conn:
        return await conn.scalar(statement, matching.claim_params(w, now=0.0)) is not None


@pytest.mark.parametrize(
    ("kind", "path", "bodies"),
    [
        ("text", "generate/text/async", TEXT_REQUESTS),
        ("image", "generate/async", IMAGE_REQUESTS),
        ("alchemy", "interrogate/async", ALCHEMY_REQUESTS),
    ],
)
async def test_sql_and_python_agree(
    client: httpx.AsyncClient, api_key: str, horde: Horde, kind: str, path: str, bodies: list[dict[str, Any]]
) -> None:
    pop_path = {"text": "generate/text/pop", "image": "generate/pop", "alchemy": "interrogate/pop"}[kind]
    first = await client.post(f"{V2}/{pop_path}", json={"name": "worker one"}, headers={"apikey": api_key})
    assert first.status_code == 200, first.text
    w1 = uuid.UUID((await client.get(f"{V2}/workers/name/worker one")).json()["id"])
    for body in bodies:
        key = "0000000000" if body.get(ANONYMOUS) else api_key
        sent = {k: v for k, v in _fill(body, w1).items() if k != ANONYMOUS}
        accepted = await client.post(f"{V2}/{path}", json=sent, headers={"apikey": key})
        assert accepted.status_code == 202, (body, accepted.text)
    async with horde.db.autocommit() as conn:
        await conn.execute(update(requests).where(requests.c.prompt == UNSAFE).values(unsafe_ip=True))
    queue = await _queued(horde, kind)
    assert len(queue) == len(bodies)
    disagreements = []
    fits = 0
    for q, w in itertools.product(queue, _profiles(kind, w1)):
        python = matching.skip_reason(q, w)
        sql = await _sql_fits(horde, w, q.id)
        fits += sql
        if sql != (python is None):
            disagreements.append((q.prompt or sorted(q.forms), w, python, sql))
    assert not disagreements
    assert 0 < fits < len(queue) * len(_profiles(kind, w1))  # the pairs cover both answers
