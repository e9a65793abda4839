"""Bodies built with our models parse in horde-sdk, with no field it does not know (its strict mode).

horde-sdk forbids unknown fields when TESTS_ONGOING is set and stores them in `model_extra`
otherwise; both are checked, so the result does not depend on import order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from horde.contract import (
    ActiveModel,
    DeletedWorker,
    GenerationKobold,
    GenerationMetadataStable,
    GenerationPayloadKobold,
    GenerationPayloadStable,
    GenerationStable,
    GenerationSubmitted,
    HeartbeatResponse,
    HordeModel,
    HordeModes,
    HordePerformance,
    InterrogationFormStatus,
    InterrogationPopFormPayload,
    InterrogationPopPayload,
    InterrogationStatus,
    ModelPayloadKobold,
    ModelPayloadLorasStable,
    ModelPayloadStable,
    ModifyUser,
    ModifyWorker,
    Newspiece,
    RequestAsync,
    RequestError,
    RequestInterrogationResponse,
    RequestSingleWarning,
    RequestStatusCheck,
    RequestStatusKobold,
    RequestStatusStable,
    ResponseModelMessagePop,
    ResponseModelStylesUser,
    TeamDetailsLite,
    UserActiveGenerations,
    UserDetails,
    WorkerDetails,
)
from tests import needs

sdk = needs.module("horde_sdk.ai_horde_api.apimodels", extra="dev (uv sync: the dev group)")
generic = needs.module("horde_sdk.generic_api.apimodels", extra="dev (uv sync: the dev group)")

UUID = "6038971e-f0b0-4fdd-a3bb-148f561f815e"
WORKER = "00000000-0000-0000-0000-000000000001"
COUNTS = {"finished": 1, "processing": 0, "restarted": 0, "waiting": 0, "done": True}
PROGRESS = RequestStatusCheck(**COUNTS, wait_time=0, queue_position=0, kudos=12.0)
MESSAGE = ResponseModelMessagePop(
    id=UUID, message="hi", origin="mods", expiry=datetime(2030, 1, 1, tzinfo=UTC)
)
WORKER_FIELDS: dict[str, Any] = {
    "type": "image",
    "name": "w",
    "id": WORKER,
    "online": True,
    "requests_fulfilled": 3,
    "kudos_rewards": 10.5,
    "performance": "1.2 megapixelsteps per second",
    "threads": 1,
    "uptime": 600,
    "maintenance_mode": False,
    "nsfw": True,
    "trusted": False,
    "flagged": False,
    "uncompleted_jobs": 0,
    "bridge_agent": "AI Horde Worker reGen:9.0.0:https://example.com",
}
USER_FIELDS: dict[str, Any] = {
    "username": "db0#1",
    "id": 1,
    "kudos": 100.0,
    "concurrency": 30,
    "worker_invited": 0,
    "moderator": False,
    "worker_count": 1,
    "trusted": False,
    "flagged": False,
    "service": False,
    "education": False,
    "customizer": False,
    "deleted": False,
    "pseudonymous": False,
    "account_age": 60,
}

IMAGE_JOB = GenerationPayloadStable(
    payload=ModelPayloadStable(
        prompt="a cat###ugly",
        seed="1234",
        loras=[ModelPayloadLorasStable(name="123", is_version=True)],
        post_processing=["GFPGAN"],
        clip_skip=2,
        use_nsfw_censor=True,
    ),
    id=UUID,
    ids=[UUID],
    messages=[MESSAGE],
    ttl=150,
    model="stable_diffusion",
    source_image="https://r2/src.webp",
    source_processing="inpainting",
    r2_upload="https://r2/up",
    r2_uploads=["https://r2/up"],
)
CASES: list[tuple[str, HordeModel | list[HordeModel]]] = [
    (
        "ImageGenerateAsyncResponse",
        RequestAsync(
            id=UUID,
            kudos=11,
            warnings=[RequestSingleWarning(code="NoAvailableWorker", message="none")],
            message="no worker",
        ),
    ),
    ("ImageGenerateAsyncDryRunResponse", RequestAsync(kudos=12.5)),
    ("TextGenerateAsyncResponse", RequestAsync(id=UUID, kudos=0)),
    ("ImageGenerateCheckResponse", PROGRESS),
    (
        "ImageGenerateStatusResponse",
        RequestStatusStable(
            **PROGRESS.model_dump(),
            generations=[
                GenerationStable(
                    worker_id=WORKER,
                    worker_name="w",
                    model="m",
                    img="https://r2/x",
                    seed="42",
                    id=UUID,
                    censored=True,
                    gen_metadata=[GenerationMetadataStable(type="censorship", value="nsfw")],
                )
            ],
        ),
    ),
    (
        "TextGenerateStatusResponse",
        RequestStatusKobold(
            **PROGRESS.model_dump(),
            generations=[
                GenerationKobold(worker_id=WORKER, worker_name="w", model="m", text="hello", seed=0)
            ],
        ),
    ),
    ("ImageGenerateJobPopResponse", IMAGE_JOB),
    ("ImageGenerateJobPopResponse", GenerationPayloadStable(messages=[MESSAGE])),
    (
        "TextGenerateJobPopResponse",
        GenerationPayloadKobold(
            payload=ModelPayloadKobold(prompt="hi", temperature=0.7, stop_sequence=["\n"]),
            id=UUID,
            ids=[UUID],
            ttl=150,
            model="koboldcpp/x",
            softprompt="sp",
        ),
    ),
    ("TextGenerateJobPopResponse", GenerationPayloadKobold()),
    ("JobSubmitResponse", GenerationSubmitted(reward=10)),
    ("AlchemyAsyncResponse", RequestInterrogationResponse(id=UUID)),
    (
        "AlchemyStatusResponse",
        InterrogationStatus(
            state="done",
            forms=[
                InterrogationFormStatus(form="caption", state="done", result={"caption": "a cat"}),
                InterrogationFormStatus(
                    form="RealESRGAN_x4plus", state="done", result={"RealESRGAN_x4plus": "https://r2"}
                ),
                InterrogationFormStatus(form="nsfw", state="processing"),
            ],
        ),
    ),
    (
        "AlchemyJobPopResponse",
        InterrogationPopPayload(
            forms=[
                InterrogationPopFormPayload(
                    id=UUID, form="GFPGAN", source_image="https://r2/src", r2_upload="https://r2/up"
                )
            ]
        ),
    ),
    ("AlchemyJobPopResponse", InterrogationPopPayload()),
    ("AlchemyJobSubmitResponse", GenerationSubmitted(reward=1)),
    ("SingleWorkerDetailsResponse", WorkerDetails(**WORKER_FIELDS)),
    (
        "SingleWorkerDetailsResponse",
        WorkerDetails(
            **WORKER_FIELDS,
            paused=False,
            owner="db0#1",
            ipaddr="1.2.3.4",
            suspicious=0,
            models=["m"],
            team=TeamDetailsLite(name="t", id=UUID),
            contact="email@example.com",
            max_pixels=262144,
            megapixelsteps_generated=12,
            img2img=True,
            painting=True,
            post_processing=True,
            lora=True,
            controlnet=False,
            sdxl_controlnet=False,
            messages=[],
        ),
    ),
    (
        "AllWorkersDetailsResponse",
        [
            WorkerDetails(
                **{**WORKER_FIELDS, "type": "text"},
                max_length=512,
                max_context_length=2048,
                tokens_generated=100,
            )
        ],
    ),
    ("ModifyWorkerResponse", ModifyWorker(maintenance=True)),
    ("DeleteWorkerResponse", DeletedWorker(deleted_id=WORKER, deleted_name="w")),
    ("UserDetailsResponse", UserDetails(**USER_FIELDS)),
    (
        "UserDetailsResponse",
        UserDetails(
            **USER_FIELDS,
            evaluating_kudos=1,
            worker_ids=[WORKER],
            sharedkey_ids=[],
            active_generations=UserActiveGenerations(image=[UUID]),
            vpn=False,
            special=False,
            suspicious=0,
            contact="email@example.com",
            admin_comment="fine user",
            styles=[ResponseModelStylesUser(name="db0#1::style::s", id=UUID, type="image")],
        ),
    ),
    ("ListUsersDetailsResponse", [UserDetails(**USER_FIELDS)]),
    ("ModifyUserResponse", ModifyUser(new_kudos=5, undeleted=True)),
    (
        "HordeStatusModelsAllResponse",
        [ActiveModel(name="m", count=1, performance=1.5, queued=0, jobs=0, eta=0, type="image")],
    ),
    ("HordePerformanceResponse", HordePerformance(**dict.fromkeys(HordePerformance.model_fields, 0))),
    ("HordeModes", HordeModes(maintenance_mode=False, invite_only_mode=False)),
    ("NewsResponse", [Newspiece(date_published="2024-01-01", newspiece="n", importance="Information")]),
    ("AIHordeHeartbeatResponse", HeartbeatResponse(version="4.0.0")),
]


def _wire(body: HordeModel | list[HordeModel]) -> Any:
    if isinstance(body, list):
        return [item.model_dump(mode="json") for item in body]
    return body.model_dump(mode="json")


def _extras(obj: object, path: str = "$") -> list[str]:
    """Keys horde-sdk stored as unknown, anywhere in the parsed tree."""
    found: list[str] = []
    if isinstance(obj, BaseModel):
        found += [f"{path}.{key}" for key in (obj.model_extra or {})]
        for name in type(obj).model_fields:
            found += _extras(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            found += _extras(item, f"{path}[{i}]")
    return found


@pytest.mark.parametrize(("sdk_class", "body"), CASES, ids=[f"{i}-{c}" for i, (c, _) in enumerate(CASES)])
def test_parses_in_horde_sdk_with_no_unknown_field(
    sdk_class: str, body: HordeModel | list[HordeModel]
) -> None:
    parsed = getattr(sdk, sdk_class).model_validate(_wire(body))
    assert _extras(parsed) == []


def test_error_body_parses() -> None:
    wire = RequestError(message="no", rc="KudosUpfront").model_dump(mode="json")
    assert generic.RequestErrorResponse.model_validate(wire).rc == "KudosUpfront"


def test_sdk_lacks_proxy_passkey() -> None:
    """horde-sdk's UserDetailsResponse has no `proxy_passkey` (a swagger field, moderators only)."""
    assert "proxy_passkey" in UserDetails.model_fields
    assert "proxy_passkey" not in sdk.UserDetailsResponse.model_fields


def test_empty_pop_keeps_null_id_for_old_bridges() -> None:
    wire = GenerationPayloadStable().model_dump(mode="json")
    assert wire["id"] is None
    assert wire["ids"] == []
    assert isinstance(wire["payload"], dict)
    assert "r2_upload" not in wire
    assert "ttl" not in wire
