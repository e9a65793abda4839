"""The image request checks that carry an rc (the schema's limits live in the contract)."""

from __future__ import annotations

from horde.contract import GenerationInputStable, limits
from horde.contract.rc import RC
from horde.server.catalog import is_special_model
from horde.server.errors import HordeError
from horde.server.jobs.kinds.common import check_batching, refuse_unbuilt
from horde.server.kudos.pricing import UPSCALERS
from horde.server.users.principal import Principal
from horde.server.workers.capabilities import Cap

MAX_PROMPT_WORDS = 7500
MAX_LORAS = 5
MAX_TIS = 20
MAX_EXTRA_SOURCES = 5
NEW_POST_PROCESSORS = frozenset(
    {"4xNomos8kSC", "4xLSDIRplus", "4xNomosWebPhoto_RealPLKSR", "4xNomos2_realplksr_dysample",
     "4xNomos2_hq_dat2", "2xModernSpanimationV1", "GFPGANv1.3", "RestoreFormer"}
)  # fmt: skip


def _check_prompt(prompt: str) -> None:
    if not prompt.strip() or not prompt.split("###", 1)[0].strip():
        raise HordeError(RC.MissingPrompt, "A prompt is required")
    if len(prompt.encode()) > limits.MAX_PROMPT_BYTES or len(prompt.split()) > MAX_PROMPT_WORDS:
        raise HordeError(
            RC.InvalidPromptSize,
            f"Prompts are limited to {MAX_PROMPT_WORDS} words and {limits.MAX_PROMPT_BYTES} bytes",
        )


def _check_params(body: GenerationInputStable) -> None:
    p = body.params
    if round(p.cfg_scale, 2) != p.cfg_scale:
        raise HordeError(RC.BadCFGDecimals, "cfg_scale may have at most 2 decimals")
    if len([pp for pp in p.post_processing if pp in UPSCALERS]) > 1:
        raise HordeError(RC.TooManyUpscalers, "Only one upscaler can be requested")
    if len(p.loras or []) > MAX_LORAS:
        raise HordeError(RC.TooManyLoras, f"At most {MAX_LORAS} LoRAs are allowed")
    if any(lora.is_version and not lora.name.isdigit() for lora in p.loras or []):
        raise HordeError(RC.BadLoraVersion, "A LoRA version must be given by its numeric id")
    if len(p.tis or []) > MAX_TIS:
        raise HordeError(RC.TooManyTIs, f"At most {MAX_TIS} textual inversions are allowed")
    if p.workflow == "qr_code" and not any(t.reference == "qr_code" for t in p.extra_texts or []):
        raise HordeError(
            "MissingExtraTexts.", "The qr_code workflow needs an extra_text with reference qr_code"
        )


def _check_sources(body: GenerationInputStable) -> None:
    p = body.params
    if body.source_mask and not body.source_image:
        raise HordeError(RC.SourceMaskUnnecessary, "A source_mask needs a source_image")
    if p.control_type and not body.source_image:
        raise HordeError(RC.ControlNetSourceMissing, "A control_type needs a source_image")
    if p.control_type and body.source_processing in ("inpainting", "outpainting"):
        raise HordeError(RC.ControlNetInpaintingMismatch, "ControlNet cannot be combined with inpainting")
    if p.transparent and body.source_image:
        raise HordeError(RC.InvalidTransparencyImg2Img, "transparent cannot be used with img2img")
    if p.transparent and p.control_type:
        raise HordeError(RC.InvalidTransparencyCN, "transparent cannot be used with ControlNet")
    extra = body.extra_source_images or []
    if len(extra) > MAX_EXTRA_SOURCES:
        raise HordeError("TooManyExtraSourceImages.", f"At most {MAX_EXTRA_SOURCES} extra source images")
    if extra and body.source_processing != "remix":
        raise HordeError("InvalidExtraSourceImages.", "extra_source_images are only used with remix")


def _check_special(body: GenerationInputStable, user: Principal) -> None:
    """`horde_special::alias#id` models and the `special` payload: special users only, each asking for
    their own (SEMANTICS.md 5, 8). The reference passes three of these rcs in its message slot, so they
    come back as plain Forbidden or BadRequest (SEMANTICS.md 2, quirks); we answer the same."""
    if body.params.special and not user.special:
        raise HordeError(RC.BadRequest, "Only special users can send a special field.")
    for model in body.models:
        if not is_special_model(model):
            continue
        if not user.special:
            raise HordeError(RC.Forbidden, "Only special users can request a special model.")
        alias = model.split("::", 1)[1] if "::" in model else ""
        if not alias:
            raise HordeError(
                RC.SpecialMissingUsername,
                "Special models must always include the username, in the form of 'horde_special::user#id'",
            )
        if alias.rpartition("#")[2] != str(user.id):  # by id: a username can change
            raise HordeError(RC.Forbidden, f"This model can only be requested by {alias}")
        if not body.params.special:
            raise HordeError(RC.SpecialMissingPayload, "Special models have to include a special payload")


def check_image_request(body: GenerationInputStable, user: Principal) -> None:
    """Raise the reference's rc for the first semantic problem of an image request."""
    refuse_unbuilt(body, user)
    _check_prompt(body.prompt)
    _check_special(body, user)
    _check_params(body)
    _check_sources(body)
    check_batching(body, user)
    if len(body.extra_source_images or []) > 1 and not user.is_trusted:
        raise HordeError("MoreThanMinExtraSourceImage.", "Only trusted users may send several extra images")


def required_caps(body: GenerationInputStable, *, sdxl: bool = False) -> int:
    """The worker capabilities an image request needs (ADR 0003); `sdxl`: a requested model is SDXL."""
    p = body.params
    wanted = [
        (body.r2, Cap.R2),
        (bool(body.source_image), Cap.IMG2IMG),
        (body.source_processing in ("inpainting", "outpainting"), Cap.INPAINTING),
        (bool(p.post_processing), Cap.POST_PROCESSING),
        (any(pp in NEW_POST_PROCESSORS for pp in p.post_processing), Cap.NEW_POST_PROCESSORS),
        (bool(p.loras), Cap.LORA),
        (any(lora.is_version for lora in p.loras or []), Cap.LORA_VERSIONS),
        (bool(p.tis), Cap.TI),
        (bool(p.control_type), Cap.CONTROLNET),
        (p.return_control_map, Cap.RETURN_CONTROL_MAP),
        (p.hires_fix, Cap.HIRES_FIX),
        (p.tiling, Cap.TILING),
        ((p.clip_skip or 1) > 1, Cap.CLIP_SKIP),
        (p.workflow == "qr_code", Cap.QR_CODE),
        (p.workflow == "qr_code" and sdxl, Cap.SDXL_CONTROLNET),  # allow_sdxl_controlnet
        (p.transparent, Cap.LAYER_DIFFUSE),
        (bool(body.extra_source_images), Cap.EXTRA_SOURCE_IMAGES),
    ]
    caps = Cap(0)
    for needed, cap in wanted:
        if needed:
            caps |= cap
    return int(caps)


def allowed_caps(bridge_caps: int, config: dict[str, object]) -> int:
    """A worker's bridge capabilities narrowed by its `allow_*` pop flags (SDXL ControlNet is the
    worker's word alone: no bridge version grants it)."""
    caps = Cap(bridge_caps)
    if config.get("allow_sdxl_controlnet", False):
        caps |= Cap.SDXL_CONTROLNET
    flags = [
        ("allow_img2img", Cap.IMG2IMG),
        ("allow_painting", Cap.INPAINTING),
        ("allow_post_processing", Cap.POST_PROCESSING | Cap.NEW_POST_PROCESSORS),
        ("allow_controlnet", Cap.CONTROLNET),
        ("allow_sdxl_controlnet", Cap.SDXL_CONTROLNET),
        ("allow_lora", Cap.LORA | Cap.TI | Cap.LORA_VERSIONS),
    ]
    for flag, cap in flags:
        if not config.get(flag, False):
            caps &= ~cap
    return int(caps)
