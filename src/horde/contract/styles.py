"""Style and collection bodies: `/styles/image|text`, their examples, `/collections` (SEMANTICS.md 1.9).

Counts (models 1-5, tags <= 10, examples <= 4) and the prompt's placeholders are not schema limits in
the swagger: the reference checks them in the handler and answers an rc, so they are the server's
checks here too (a schema limit would answer a validation error without rc instead).
"""

from typing import Annotated, Literal

from pydantic import Field

from horde.contract import limits
from horde.contract.common import HordeModel, JsonObject, Omittable, RequestSingleWarning
from horde.contract.image import (
    ModelPayloadLorasStable,
    ModelPayloadTextualInversionsStable,
    PostProcessing,
    SamplerName,
    Side,
)
from horde.contract.text import ModelPayloadStyleKobold
from horde.contract.users import ResponseModelStylesShort

StyleName = Annotated[str, Field(min_length=1, max_length=limits.MAX_STYLE_NAME_CHARS)]
Tag = Annotated[str, Field(min_length=1, max_length=limits.MAX_STYLE_TAG_CHARS)]
ModelName = Annotated[str, Field(min_length=1, max_length=255)]
Uuid36 = Annotated[str, Field(min_length=36, max_length=36)]  # a UUID in its 36-character text form


class ModelStyleInputParamsStable(HordeModel):
    """An image style's params: only what the style sets (no defaults; a request's fill the rest)."""

    sampler_name: Omittable[SamplerName] = None
    cfg_scale: Omittable[float] = Field(default=None, ge=0, le=limits.MAX_CFG_SCALE)
    denoising_strength: Omittable[float] = Field(default=None, ge=0.01, le=1.0)
    hires_fix_denoising_strength: Omittable[float] = Field(default=None, ge=0.01, le=1.0)
    height: Omittable[Side] = None
    width: Omittable[Side] = None
    post_processing: Omittable[PostProcessing] = None
    karras: Omittable[bool] = None
    tiling: Omittable[bool] = None
    hires_fix: Omittable[bool] = None
    clip_skip: Omittable[int] = Field(default=None, ge=1, le=limits.MAX_CLIP_SKIP)
    facefixer_strength: Omittable[float] = Field(default=None, ge=0, le=1.0)
    loras: Omittable[list[ModelPayloadLorasStable]] = None
    tis: Omittable[list[ModelPayloadTextualInversionsStable]] = None
    special: Omittable[JsonObject] = None
    workflow: Omittable[Literal["qr_code"]] = None
    transparent: Omittable[bool] = None
    steps: Omittable[int] = Field(default=None, ge=1, le=limits.MAX_STEPS)


class ModelStyleInputParamsKobold(ModelPayloadStyleKobold):
    """A text style's params: only what the style sets."""

    min_p: Omittable[float] = Field(default=None, ge=0.0, le=1.0)  # type: ignore[assignment]
    smoothing_factor: Omittable[float] = Field(default=None, ge=0.0, le=10.0)  # type: ignore[assignment]
    dynatemp_range: Omittable[float] = Field(default=None, ge=0.0, le=5.0)  # type: ignore[assignment]
    dynatemp_exponent: Omittable[float] = Field(default=None, ge=0.0, le=5.0)  # type: ignore[assignment]


class _StyleFields(HordeModel):
    public: bool = True
    nsfw: bool = False
    tags: list[Tag] = Field(default_factory=list)
    models: list[ModelName] = Field(default_factory=list)
    sharedkey: Omittable[Uuid36] = None  # the swagger has it on image styles only; accepted on both


class ModelStyleInputStable(_StyleFields):
    """POST /styles/image body (customizers and trusted users)."""

    name: StyleName
    info: Omittable[str] = Field(default=None, min_length=10, max_length=1000)
    prompt: str = Field(default="{p}{np}", min_length=7)
    params: ModelStyleInputParamsStable = Field(default_factory=ModelStyleInputParamsStable)


class ModelStyleInputKobold(_StyleFields):
    """POST /styles/text body (customizers and trusted users)."""

    name: StyleName
    info: Omittable[str] = Field(default=None, min_length=10, max_length=1000)
    prompt: str = Field(default="{p}", min_length=3)
    params: ModelStyleInputParamsKobold = Field(default_factory=ModelStyleInputParamsKobold)


class _StylePatch(HordeModel):
    name: Omittable[StyleName] = None
    info: Omittable[str] = Field(default=None, min_length=1, max_length=1000)
    prompt: Omittable[str] = Field(default=None, min_length=7)
    public: Omittable[bool] = None
    nsfw: Omittable[bool] = None
    tags: Omittable[list[Tag]] = None
    models: Omittable[list[ModelName]] = None
    sharedkey: Omittable[Uuid36] = None


class ModelStylePatchStable(_StylePatch):
    """PATCH /styles/image/{id} body (the style's owner): only the fields sent change."""

    params: Omittable[ModelStyleInputParamsStable] = None


class ModelStylePatchKobold(_StylePatch):
    """PATCH /styles/text/{id} body (the style's owner)."""

    params: Omittable[ModelStyleInputParamsKobold] = None


class StyleModify(HordeModel):
    """The answer to a style, example or collection change."""

    id: str
    message: str = "OK"
    warnings: list[RequestSingleWarning] = Field(default_factory=list)


class InputStyleExamplePost(HordeModel):
    """POST /styles/image/{id}/example and PATCH .../example/{example_id} body."""

    url: str = Field(min_length=1, max_length=limits.MAX_STYLE_EXAMPLE_URL_CHARS)
    primary: bool = False


class StyleExample(InputStyleExamplePost):
    """One example image of a style."""

    id: str


class _StyleOut(HordeModel):
    name: StyleName
    info: Omittable[str] = Field(default=None, max_length=1000)  # a patch may set one shorter than 10
    public: bool
    nsfw: bool
    tags: list[Tag] = Field(default_factory=list)
    models: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    use_count: int = 0
    creator: str


class StyleStable(_StyleOut):
    """An image style (GET /styles/image items, GET /styles/image/{id}, .../image_by_name/{name}).

    `sharedkey` is shown to nobody: a shared key's id is its credential (the reference sends the key's
    details only to the style's owner)."""

    id: Uuid36
    prompt: str = Field(min_length=7)
    params: ModelStyleInputParamsStable = Field(default_factory=ModelStyleInputParamsStable)
    examples: list[StyleExample] = Field(default_factory=list)


class StyleKobold(_StyleOut):
    """A text style (GET /styles/text items, GET /styles/text/{id}, .../text_by_name/{name})."""

    id: str
    prompt: str = Field(min_length=3)
    params: ModelStyleInputParamsKobold = Field(default_factory=ModelStyleInputParamsKobold)


class InputModelCollection(HordeModel):
    """POST /collections body; PATCH /collections/{id} changes only the fields sent."""

    name: Omittable[StyleName] = None
    info: Omittable[str] = Field(default=None, min_length=1, max_length=1000)
    public: Omittable[bool] = None
    styles: Omittable[list[Annotated[str, Field(min_length=1)]]] = None


class ResponseModelCollection(HordeModel):
    """A collection (GET /collections items, GET /collections/{id}, /collection_by_name/{name})."""

    id: str
    name: StyleName
    type: Literal["image", "text"]
    info: Omittable[str] = Field(default=None, min_length=1, max_length=1000)
    public: bool = True
    styles: list[ResponseModelStylesShort] = Field(default_factory=list)
    use_count: int = 0
