"""Base model, wire conventions and the swagger definitions shared by image, text and alchemy.

Wire conventions (every contract model follows them):
* Unknown keys in a body are ignored, as flask-restx does; dumping uses the API's names (aliases such
  as `post-processing`), so `model_dump(mode="json")` is the wire body.
* A field typed `Omittable[X]` is left out of the body while it is None. The reference marshals absent
  values as `null`, but horde-sdk types many of them as non-nullable with a default (pop
  `source_processing`, payload `clip_skip`, `HordeModes.raid_mode`...), so omitting is what parses
  everywhere. Fields the reference always sends are required (or have a non-None default) instead.
* A plain `X | None` field (pop `id`, `model`; a team's `id`, `name`) is always sent, `null` when
  empty: old bridges index `pop["id"]`.
* Class names are the swagger definition names, so the generated OpenAPI carries the same schema names.
"""

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from horde.contract import limits

T = TypeVar("T")


def _is_none(value: object) -> bool:
    return value is None


Omittable = Annotated[T | None, Field(exclude_if=_is_none)]
"""An optional field that is omitted from the body, rather than sent as `null`, while it is None."""


class HordeModel(BaseModel):
    """Base of every contract model: unknown keys ignored, API names on the wire."""

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


PostProcessor = Literal[
    "GFPGAN",
    "RealESRGAN_x4plus",
    "RealESRGAN_x2plus",
    "RealESRGAN_x4plus_anime_6B",
    "NMKD_Siax",
    "4x_AnimeSharp",
    "CodeFormers",
    "strip_background",
    "4xNomos8kSC",
    "4xLSDIRplus",
    "4xNomosWebPhoto_RealPLKSR",
    "4xNomos2_realplksr_dysample",
    "4xNomos2_hq_dat2",
    "2xModernSpanimationV1",
    "GFPGANv1.3",
    "RestoreFormer",
]
WorkerType = Literal["image", "text", "interrogation"]
ModelType = Literal["image", "text"]
SubmitState = Literal["ok", "censored", "faulted", "csam"]
GenerationState = Literal["ok", "censored", "csam"]
WarningCode = Literal[
    "NoAvailableWorker",
    "ClipSkipMismatch",
    "StepsTooFew",
    "StepsTooMany",
    "CfgScaleMismatch",
    "CfgScaleTooSmall",
    "CfgScaleTooLarge",
    "SamplerMismatch",
    "SchedulerMismatch",
]


class RequestError(HordeModel):
    """Every expected failure: `{"message", "rc"}` (rc strings and statuses in `contract.rc`)."""

    message: str
    rc: str  # the swagger's enum predates several live rcs (contract.rc.RC is the vocabulary)


class RequestValidationError(HordeModel):
    """A schema validation failure: 400 `{"message": "Input payload validation failed", "errors"}`.

    The swagger derives it from RequestError (so `rc` would be required); live bodies have no rc
    (SEMANTICS §2).
    """

    message: str
    errors: dict[str, str] = Field(default_factory=dict)


class SimpleResponse(HordeModel):
    """A bare acknowledgement."""

    message: str = "OK"


class ExtraSourceImage(HordeModel):
    """An additional source image (remix), in a request and in a pop payload."""

    image: str = Field(min_length=1)
    strength: float = 1.0


class RequestSingleWarning(HordeModel):
    """A non-fatal remark on an accepted request."""

    code: WarningCode
    message: str = Field(min_length=1)


class RequestAsync(HordeModel):
    """202 reply to an async generate; with `dry_run` only `kudos` is set (and the status is 200)."""

    id: Omittable[str] = None
    kudos: Omittable[float] = None
    message: Omittable[str] = None
    warnings: Omittable[list[RequestSingleWarning]] = None


class RequestStatusCheck(HordeModel):
    """Progress of a generation request (`/generate/check/{id}`), also the base of the full status."""

    finished: int
    processing: int
    restarted: int
    waiting: int
    done: bool
    faulted: bool = False
    wait_time: int
    queue_position: int
    kudos: float
    is_possible: bool = True


class Generation(HordeModel):
    """Fields every finished generation carries (horde-sdk requires all four)."""

    worker_id: str = Field(min_length=36, max_length=36)
    worker_name: str
    model: str
    state: GenerationState = "ok"


class GenerationSubmitted(HordeModel):
    """Reply to a job submit: the kudos earned before the bridge multiplier."""

    reward: float


class ResponseModelMessagePop(HordeModel):
    """A worker message as carried in a pop reply."""

    id: str
    message: str
    origin: Omittable[str] = None
    expiry: datetime


class NoValidRequestFound(HordeModel):
    """Why queued requests were skipped by this pop, per reason (always sent, 0 when none)."""

    worker_id: int = Field(default=0, ge=0)
    performance: int = Field(default=0, ge=0)
    nsfw: int = Field(default=0, ge=0)
    blacklist: int = Field(default=0, ge=0)
    untrusted: int = Field(default=0, ge=0)
    models: int = Field(default=0, ge=0)
    bridge_version: int = Field(default=0, ge=0)
    kudos: int = 0


class PopInput(HordeModel):
    """Fields common to image and text job pops."""

    name: str  # required: the reference's parser refuses a pop without it
    priority_usernames: list[str] = Field(default_factory=list)
    nsfw: bool = True  # SEMANTICS §1.1: parser default true (swagger: false)
    models: list[Annotated[str, Field(min_length=3, max_length=255)]] = Field(default_factory=list)
    bridge_agent: str = Field(default=limits.DEFAULT_BRIDGE_AGENT, max_length=limits.MAX_BRIDGE_AGENT_CHARS)
    threads: int = Field(default=1, ge=1, le=limits.MAX_THREADS)
    require_upfront_kudos: bool = False
    amount: int = Field(default=1, ge=1, le=limits.MAX_POP_AMOUNT)
    # Swagger says true, which would make every worker that omits it "extra slow" and starve it
    # of normal requests (SEMANTICS §3.3); the reference parser defaults to false.
    extra_slow_worker: bool = False


class SubmitInput(HordeModel):
    """Fields common to image and text job submits."""

    id: str
    generation: Omittable[str] = None
    state: SubmitState = "ok"


class GenerateInput(HordeModel):
    """Fields GenerationInputStable and GenerationInputKobold share (no swagger definition of its own)."""

    trusted_workers: bool = False
    validated_backends: bool = False  # SEMANTICS §1.1: parser default false (swagger: true)
    slow_workers: bool = True
    extra_slow_workers: bool = False
    workers: list[str] = Field(default_factory=list)
    worker_blacklist: bool = False
    dry_run: bool = False
    proxied_account: Omittable[str] = None
    extra_source_images: Omittable[list[ExtraSourceImage]] = None
    disable_batching: bool = False
    allow_downgrade: bool = False
    style: Omittable[str] = Field(
        default=None, min_length=limits.MIN_STYLE_CHARS, max_length=limits.MAX_STYLE_CHARS
    )


JsonObject = dict[str, Any]
"""A free-form object: the swagger's wildcard (`"*"`) definitions and raw fields."""
