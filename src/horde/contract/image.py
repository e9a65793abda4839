"""Image generation bodies: `/generate/async`, `/generate/check|status/{id}`, `/generate/pop|submit`.

The swagger's allOf chains are inheritance here:
`ModelPayloadStyleStable <- ModelPayloadRootStable <- ModelGenerationInputStable` (request params) and
`<- ModelPayloadStable` (the pop payload), so both share the live defaults.
Defaults are the reference parser's effective ones (SEMANTICS §1.1); each one that differs from the
swagger cites it. Semantic checks with an rc (MissingPrompt, TooManyLoras, BadCFGDecimals, ...) are the
server's, not the schema's.
"""

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from horde.contract import limits
from horde.contract.common import (
    ExtraSourceImage,
    GenerateInput,
    Generation,
    HordeModel,
    JsonObject,
    NoValidRequestFound,
    Omittable,
    PopInput,
    PostProcessor,
    RequestStatusCheck,
    ResponseModelMessagePop,
    SubmitInput,
)

SamplerName = Literal[
    "lcm",
    "k_dpmpp_sde",
    "DDIM",
    "k_heun",
    "k_dpm_2_a",
    "k_euler",
    "k_dpm_2",
    "dpmsolver",
    "k_lms",
    "k_dpmpp_2s_a",
    "k_dpmpp_2m",
    "k_dpm_adaptive",
    "k_euler_a",
    "k_dpm_fast",
]
ControlType = Literal[
    "canny", "hed", "depth", "normal", "openpose", "seg", "scribble", "fakescribbles", "hough"
]
SourceProcessing = Literal["img2img", "inpainting", "outpainting", "remix"]
MetadataType = Literal[
    "lora",
    "ti",
    "censorship",
    "source_image",
    "source_mask",
    "extra_source_images",
    "batch_index",
    "information",
    "aesthetic_score",
]
MetadataValue = Literal["download_failed", "parse_failed", "baseline_mismatch", "csam", "nsfw", "see_ref"]


def _unique(items: list[PostProcessor]) -> list[PostProcessor]:
    if len(set(items)) != len(items):
        raise ValueError("post_processing items must be unique")
    return items


Side = Annotated[int, Field(ge=limits.MIN_SIDE, le=limits.MAX_SIDE, multiple_of=limits.SIDE_MULTIPLE)]
PostProcessing = Annotated[
    list[PostProcessor], AfterValidator(_unique), Field(json_schema_extra={"uniqueItems": True})
]


class ModelPayloadLorasStable(HordeModel):
    """A LoRA to apply."""

    name: str = Field(min_length=1, max_length=255)
    model: float = Field(default=1.0, ge=-limits.MAX_LORA_STRENGTH, le=limits.MAX_LORA_STRENGTH)
    clip: float = Field(default=1.0, ge=-limits.MAX_LORA_STRENGTH, le=limits.MAX_LORA_STRENGTH)
    inject_trigger: Omittable[str] = Field(default=None, min_length=1, max_length=30)
    is_version: bool = False


class ModelPayloadTextualInversionsStable(HordeModel):
    """A textual inversion to apply."""

    name: str = Field(min_length=1, max_length=255)
    inject_ti: Omittable[Literal["prompt", "negprompt"]] = None
    strength: float = Field(default=1.0, ge=-5.0, le=5.0)


class ExtraText(HordeModel):
    """Extra text for a workflow (e.g. the QR code's content)."""

    text: str = Field(min_length=1)
    reference: str = Field(min_length=3)


class ModelPayloadStyleStable(HordeModel):
    """Generation parameters a style may set."""

    sampler_name: SamplerName = "k_euler_a"
    cfg_scale: float = Field(default=5.0, ge=0, le=limits.MAX_CFG_SCALE)  # SEMANTICS §1.1 (swagger: 7.5)
    denoising_strength: Omittable[float] = Field(default=None, ge=0.01, le=1.0)
    hires_fix_denoising_strength: Omittable[float] = Field(default=None, ge=0.01, le=1.0)
    height: Side = limits.DEFAULT_SIDE
    width: Side = limits.DEFAULT_SIDE
    post_processing: PostProcessing = Field(default_factory=list)
    karras: bool = True  # SEMANTICS §1.1: server default true (swagger: false)
    tiling: bool = False
    hires_fix: bool = False
    clip_skip: Omittable[int] = Field(default=None, ge=1, le=limits.MAX_CLIP_SKIP)
    facefixer_strength: Omittable[float] = Field(default=None, ge=0, le=1.0)
    loras: Omittable[list[ModelPayloadLorasStable]] = None
    tis: Omittable[list[ModelPayloadTextualInversionsStable]] = None
    special: Omittable[JsonObject] = None  # ModelSpecialPayloadStable: a free-form object
    workflow: Omittable[Literal["qr_code"]] = None
    transparent: bool = False


class ModelPayloadRootStable(ModelPayloadStyleStable):
    """Generation parameters shared by a request and a job payload."""

    seed: Omittable[str] = None  # text or digits; the pop payload carries the resolved int as a string
    seed_variation: Omittable[int] = Field(default=None, ge=1, le=limits.MAX_SEED_VARIATION)
    control_type: Omittable[ControlType] = None
    image_is_control: bool = False
    return_control_map: bool = False
    extra_texts: Omittable[list[ExtraText]] = None


class ModelGenerationInputStable(ModelPayloadRootStable):
    """The `params` of an image request.

    `steps` defaults to 30; with `control_type` the server uses 20 when the client did not send it
    (`"steps" not in params.model_fields_set`).
    """

    steps: int = Field(default=limits.DEFAULT_STEPS, ge=1, le=limits.MAX_STEPS)
    n: int = Field(default=1, ge=1, le=limits.MAX_N)


class GenerationInputStable(GenerateInput):
    """POST /generate/async body."""

    prompt: str = Field(min_length=1)
    params: ModelGenerationInputStable = Field(default_factory=ModelGenerationInputStable)
    nsfw: bool = True  # SEMANTICS §1.1: parser default true (swagger: false)
    censor_nsfw: bool = True  # SEMANTICS §1.1: parser default true (swagger: false)
    # SEMANTICS §1.1: an omitted key means ["stable_diffusion"]; an explicit [] means any model
    models: list[str] = Field(default_factory=lambda: ["stable_diffusion"])
    source_image: Omittable[str] = None
    source_processing: SourceProcessing = "img2img"
    source_mask: Omittable[str] = None
    r2: bool = True
    shared: bool = False
    replacement_filter: bool = True
    webhook: Omittable[str] = Field(
        default=None, min_length=limits.MIN_WEBHOOK_CHARS, max_length=limits.MAX_WEBHOOK_CHARS
    )


class GenerationMetadataStable(HordeModel):
    """A remark a worker attaches to one image (censorship, LoRA download failure, ...)."""

    type: MetadataType
    value: MetadataValue
    ref: Omittable[str] = Field(default=None, max_length=255)


class GenerationStable(Generation):
    """One finished image in a status reply (`img` is an R2 URL, or base64 webp when `r2` is false)."""

    img: str
    seed: str
    id: str
    censored: bool
    gen_metadata: list[GenerationMetadataStable] = Field(default_factory=list)


class RequestStatusStable(RequestStatusCheck):
    """GET/DELETE /generate/status/{id} reply."""

    generations: list[GenerationStable] = Field(default_factory=list)
    shared: bool = False


class PopInputStable(PopInput):
    """POST /generate/pop body."""

    max_pixels: int = Field(default=limits.DEFAULT_MAX_PIXELS, ge=1, le=limits.MAX_INT32)
    blacklist: list[str] = Field(default_factory=list)
    allow_img2img: bool = True
    allow_painting: bool = True
    allow_unsafe_ipaddr: bool = True
    allow_post_processing: bool = True
    allow_controlnet: bool = False  # SEMANTICS §1.1: parser default false (swagger: true)
    allow_sdxl_controlnet: bool = False  # SEMANTICS §1.1: parser default false (swagger: true)
    allow_lora: bool = False  # SEMANTICS §1.1: parser default false (swagger: true)
    limit_max_steps: bool = False  # SEMANTICS §1.1: parser default false (swagger: true)


class ModelPayloadStable(ModelPayloadRootStable):
    """The job payload a worker receives: the request params with `steps` as `ddim_steps`."""

    prompt: Omittable[str] = None
    ddim_steps: int = limits.DEFAULT_STEPS
    n_iter: int = 1
    use_nsfw_censor: Omittable[bool] = None


class NoValidRequestFoundStable(NoValidRequestFound):
    """Image skip reasons; the image pop always reports every key."""

    max_pixels: int = 0
    step_count: int = 0
    unsafe_ip: int = 0
    img2img: int = 0
    painting: int = 0
    post_processing: int = Field(default=0, alias="post-processing")
    lora: int = 0
    controlnet: int = 0


class GenerationPayloadStable(HordeModel):
    """POST /generate/pop reply.

    With no job: `id` and `model` are null, `ids` is empty and `payload` holds only defaults
    (horde-sdk requires `payload` and `ids` to be present).
    """

    payload: ModelPayloadStable = Field(default_factory=ModelPayloadStable)
    id: str | None = None
    ids: list[str] = Field(default_factory=list)
    messages: list[ResponseModelMessagePop] = Field(default_factory=list)
    ttl: Omittable[int] = None
    skipped: NoValidRequestFoundStable = Field(default_factory=NoValidRequestFoundStable)
    model: str | None = None
    source_image: Omittable[str] = None
    source_processing: SourceProcessing = "img2img"
    source_mask: Omittable[str] = None
    extra_source_images: Omittable[list[ExtraSourceImage]] = None
    r2_upload: Omittable[str] = None
    r2_uploads: Omittable[list[str]] = None


class SubmitInputStable(SubmitInput):
    """POST /generate/submit body (`generation` is "R2" after an upload to the presigned URL)."""

    seed: int
    censored: bool = False  # obsolete: gen_metadata censorship entries replace it
    gen_metadata: Omittable[list[GenerationMetadataStable]] = None


class AestheticRating(HordeModel):
    """One image's rating in a POST /generate/rate/{id} body."""

    id: str = Field(min_length=36, max_length=36)
    rating: int = Field(ge=1, le=10)
    artifacts: int | None = Field(default=None, ge=0, le=5)


class AestheticsPayload(HordeModel):
    """POST /generate/rate/{id} body: the best image of the set and/or ratings of some of them."""

    best: str | None = Field(default=None, min_length=36, max_length=36)
    ratings: list[AestheticRating] | None = None
