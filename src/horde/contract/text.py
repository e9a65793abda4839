"""Text generation bodies: `/generate/text/async`, `/generate/text/status/{id}`, `/generate/text/pop|submit`.

allOf chains as inheritance: `ModelPayloadStyleKobold <- ModelPayloadRootKobold <-
ModelGenerationInputKobold` (request params) and `<- ModelPayloadKobold` (the pop payload).
Semantic checks with an rc (TokenOverflow, MissingFullSamplerOrder, TooManyStopSequences, ...) are
the server's. There is no text `check` endpoint.
"""

from pydantic import Field

from horde.contract import limits
from horde.contract.common import (
    ExtraSourceImage,
    GenerateInput,
    Generation,
    HordeModel,
    NoValidRequestFound,
    Omittable,
    PopInput,
    RequestStatusCheck,
    ResponseModelMessagePop,
    SubmitInput,
)
from horde.contract.image import MetadataType, MetadataValue


class ModelPayloadStyleKobold(HordeModel):
    """Sampling parameters a text style may set."""

    frmtadsnsp: Omittable[bool] = None
    frmtrmblln: Omittable[bool] = None
    frmtrmspch: Omittable[bool] = None
    frmttriminc: Omittable[bool] = None
    rep_pen: Omittable[float] = Field(default=None, ge=1, le=3)
    rep_pen_range: Omittable[int] = Field(default=None, ge=0, le=4096)
    rep_pen_slope: Omittable[float] = Field(default=None, ge=0, le=10)
    singleline: Omittable[bool] = None
    temperature: Omittable[float] = Field(default=None, ge=0, le=5.0)
    tfs: Omittable[float] = Field(default=None, ge=0.0, le=1.0)
    top_a: Omittable[float] = Field(default=None, ge=0.0, le=1.0)
    top_k: Omittable[int] = Field(default=None, ge=0, le=200)
    top_p: Omittable[float] = Field(default=None, ge=0.001, le=1.0)
    typical: Omittable[float] = Field(default=None, ge=0.0, le=1.0)
    sampler_order: Omittable[list[int]] = None
    use_default_badwordsids: Omittable[bool] = None
    stop_sequence: Omittable[list[str]] = None
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    smoothing_factor: float = Field(default=0.0, ge=0.0, le=10.0)
    dynatemp_range: float = Field(default=0.0, ge=0.0, le=5.0)
    dynatemp_exponent: float = Field(default=1.0, ge=0.0, le=5.0)


class ModelPayloadRootKobold(ModelPayloadStyleKobold):
    """Text parameters shared by a request and a job payload."""

    n: int = Field(default=1, ge=1, le=limits.MAX_N)  # swagger gives no default; the server uses 1
    max_context_length: int = Field(
        default=limits.DEFAULT_CONTEXT_LENGTH, ge=limits.MIN_CONTEXT_LENGTH, le=limits.MAX_CONTEXT_LENGTH
    )
    max_length: int = Field(
        default=limits.DEFAULT_TEXT_LENGTH, ge=limits.MIN_TEXT_LENGTH, le=limits.MAX_TEXT_LENGTH
    )


class ModelGenerationInputKobold(ModelPayloadRootKobold):
    """The `params` of a text request."""


class GenerationInputKobold(GenerateInput):
    """POST /generate/text/async body.

    `extra_source_images` is accepted by the schema and refused by the server (SEMANTICS §1.2).
    """

    prompt: str  # required by the reference's parser (the swagger marks nothing required)
    params: ModelGenerationInputKobold = Field(default_factory=ModelGenerationInputKobold)
    softprompt: Omittable[str] = Field(default=None, min_length=1)
    models: list[str] = Field(default_factory=list)  # SEMANTICS §1.2: [] means any model
    webhook: Omittable[str] = None


class GenerationMetadataKobold(HordeModel):
    """A remark a worker attaches to one text generation.

    The swagger allows only censorship/csam here; we accept the image vocabulary as well, so a worker
    can say which sampler fields its backend dropped (`information`/`see_ref`). horde-sdk parses both
    kinds with one model, and a reference client only ever sends the narrower set.
    """

    type: MetadataType
    value: MetadataValue
    ref: Omittable[str] = Field(default=None, max_length=255)


class GenerationKobold(Generation):
    """One finished text generation in a status reply (the swagger has no `id` here)."""

    text: str = Field(min_length=0)
    seed: int = 0
    gen_metadata: list[GenerationMetadataKobold] = Field(default_factory=list)


class RequestStatusKobold(RequestStatusCheck):
    """GET/DELETE /generate/text/status/{id} reply."""

    generations: list[GenerationKobold] = Field(default_factory=list)


class PopInputKobold(PopInput):
    """POST /generate/text/pop body."""

    # bounded so that a worker's limit always fits the database's integer columns
    max_length: int = Field(default=limits.DEFAULT_WORKER_MAX_LENGTH, ge=1, le=limits.MAX_INT32)
    max_context_length: int = Field(
        default=limits.DEFAULT_WORKER_MAX_CONTEXT_LENGTH, ge=1, le=limits.MAX_INT32
    )
    softprompts: list[str] = Field(default_factory=list)


class ModelPayloadKobold(ModelPayloadRootKobold):
    """The job payload a text worker receives (the server sends `n: 1`)."""

    prompt: Omittable[str] = None


class NoValidRequestFoundKobold(NoValidRequestFound):
    """Text skip reasons."""

    max_context_length: int = 0
    max_length: int = 0
    matching_softprompt: int = 0


class GenerationPayloadKobold(HordeModel):
    """POST /generate/text/pop reply; with no job `id`/`model` are null and `ids` empty."""

    payload: ModelPayloadKobold = Field(default_factory=ModelPayloadKobold)
    id: str | None = None
    ids: list[str] = Field(default_factory=list)
    messages: list[ResponseModelMessagePop] = Field(default_factory=list)
    ttl: Omittable[int] = None
    extra_source_images: Omittable[list[ExtraSourceImage]] = None
    skipped: NoValidRequestFoundKobold = Field(default_factory=NoValidRequestFoundKobold)
    softprompt: Omittable[str] = None
    model: str | None = None


class SubmitInputKobold(SubmitInput):
    """POST /generate/text/submit body."""

    # not in the swagger, but the reference's parser reads it (SEMANTICS §1.2: seed=0)
    seed: int = 0
    gen_metadata: Omittable[list[GenerationMetadataKobold]] = None
