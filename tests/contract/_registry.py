"""Which contract models map to which swagger definitions, and every known, deliberate difference.

Each entry says why; a difference that is not listed here fails the tests.
"""

from __future__ import annotations

import horde.contract as contract
from horde.contract import HordeModel

# Contract models with no swagger definition of their own.
NOT_IN_SWAGGER = {
    "HordeModel": "the base class",
    "GenerateInput": "fields GenerationInputStable and GenerationInputKobold share",
    "InterrogationSubmitInput": "the swagger describes /interrogate/submit's body inline",
    "HeartbeatResponse": "the swagger documents no schema for /status/heartbeat",
    "DevTestUserInput": "test-only endpoint, absent from the reference",
    "DevTestUser": "test-only endpoint, absent from the reference",
    "ServiceInfo": "/.well-known/serviceinfo is outside the API, absent from the swagger",
    "KudosTransferInput": "the swagger describes /kudos/transfer's body inline",
    "KudosAwardInput": "the swagger describes /kudos/award's body inline",
    "WorkerMessageDetails": "the swagger answers messages with the input model; ours adds id and expires",
    "FilterCheck": "the swagger describes POST /filters' body inline",
    "HordeModesInput": "the swagger describes PUT /status/modes' body inline",
    "ProblemJob": "this horde's extension (GET /problem_jobs), absent from the reference",
    "SharedKeyPatch": "the swagger reuses SharedKeyInput for PATCH; a patch has no defaults to apply",
}

# Bodies the horde accepts (the rest are bodies it sends).
INPUT_MODELS = {
    "GenerationInputStable",
    "ModelGenerationInputStable",
    "ModelPayloadStyleStable",
    "ModelPayloadRootStable",
    "ModelPayloadLorasStable",
    "ModelPayloadTextualInversionsStable",
    "ExtraText",
    "ExtraSourceImage",
    "PopInput",
    "PopInputStable",
    "SubmitInput",
    "SubmitInputStable",
    "GenerationMetadataStable",
    "GenerationInputKobold",
    "ModelGenerationInputKobold",
    "ModelPayloadRootKobold",
    "ModelPayloadStyleKobold",
    "PopInputKobold",
    "SubmitInputKobold",
    "GenerationMetadataKobold",
    "ModelInterrogationInputStable",
    "ModelInterrogationFormStable",
    "InterrogationPopInput",
    "ModifyWorkerInput",
    "ModifyUserInput",
    "CreateTeamInput",
    "ModifyTeamInput",
    "ResponseModelMessage",
    "AestheticsPayload",
    "AestheticRating",
    "PutNewFilter",
    "PatchExistingFilter",
    "SharedKeyInput",
    "ModelStyleInputStable",
    "ModelStyleInputKobold",
    "ModelStylePatchStable",
    "ModelStylePatchKobold",
    "ModelStyleInputParamsStable",
    "ModelStyleInputParamsKobold",
    "InputStyleExamplePost",
    "InputModelCollection",
}

# Fields present on only one side.
FIELD_DIFFERENCES = {
    ("RequestValidationError", "rc"): "the swagger inherits it from RequestError; live bodies have none",
    ("SubmitInputKobold", "seed"): "not in the swagger, read by the reference's parser (SEMANTICS §1.2)",
    ("ModelInterrogationInputStable", "trusted_workers"): "read by the reference's parser (SEMANTICS §1.3)",
    ("TeamDetails", "contributions"): "the reference sends it (SEMANTICS §1.6); the swagger lacks it",
    ("ModelStyleInputKobold", "sharedkey"): "accepted on text styles too (the swagger: image styles only)",
    ("ModelStylePatchKobold", "sharedkey"): "as ModelStyleInputKobold",
    ("StyleStable", "sharedkey"): "a shared key's id is its credential: shown to nobody (ADR 0024)",
    ("StyleStable", "shared_key"): "shared keys are not wired to styles on this branch (ADR 0024)",
}

_STYLE_INPUTS = (
    "ModelStyleInputStable",
    "ModelStyleInputKobold",
    "ModelStylePatchStable",
    "ModelStylePatchKobold",
)

# Same field, different JSON type or enum.
TYPE_DIFFERENCES = {
    ("WorkerDetails", "megapixelsteps_generated"): "integer, not number: horde-sdk parses it as int",
    ("WorkerDetails", "tokens_generated"): "integer, not number: horde-sdk parses it as int",
    ("RequestError", "rc"): "free string: the swagger enum predates several live rcs (contract.rc.RC)",
    ("GenerationMetadataKobold", "type"): "the image vocabulary too: workers note dropped sampler fields",
    ("GenerationMetadataKobold", "value"): "the image vocabulary too: workers note dropped sampler fields",
    ("InterrogationPopInput", "amount"): "bounded 1..20 like the other pops (a negative LIMIT was a 500)",
    ("PopInputKobold", "max_length"): "bounded to the database's INTEGER range (overflow was a 500)",
    ("PopInputKobold", "max_context_length"): "bounded to the database's INTEGER range (overflow was a 500)",
    ("PopInputStable", "max_pixels"): "bounded to the database's INTEGER range (overflow was a 500)",
    ("ModifyUserInput", "worker_invited"): "bounded to 0..INTEGER (2**63 was a 500)",
    ("SharedKeyInput", "expiry"): "bounded to 100 years of days (a huge one overflowed a date: a 500)",
    **{
        (model, "models"): "model names bounded to the column's 255 characters"
        for model in (
            "ModelStyleInputStable",
            "ModelStyleInputKobold",
            "ModelStylePatchStable",
            "ModelStylePatchKobold",
        )
    },
    ("InputStyleExamplePost", "url"): "bounded to the column's 1,024 characters",
    ("StyleExample", "url"): "as InputStyleExamplePost",
    ("StyleStable", "info"): "a patch may set an info as short as 1 character (ModelStylePatchStable)",
    ("StyleKobold", "info"): "a patch may set an info as short as 1 character (ModelStylePatchKobold)",
    **{
        (model, field): "bounded: a regex of 1-500 characters, texts up to 1,000 (the reference's are not)"
        for model in ("PutNewFilter", "PatchExistingFilter")
        for field in ("regex", "description", "replacement")
    },
}

# Input fields we require although the swagger does not.
EXTRA_REQUIRED = {
    ("GenerationInputKobold", "prompt"): "the reference's parser requires it",
    ("PopInput", "name"): "the reference's parser requires it (SEMANTICS §1.1)",
    ("PopInputStable", "name"): "as PopInput",
    ("PopInputKobold", "name"): "as PopInput",
    ("InterrogationPopInput", "name"): "as PopInput",
    ("ModelInterrogationInputStable", "source_image"): "SEMANTICS §1.3: required",
    ("ExtraSourceImage", "image"): "an entry without an image is meaningless (and refused)",
    ("ExtraText", "text"): "an entry without text is meaningless (and refused)",
    ("ExtraText", "reference"): "an entry without a reference is meaningless (and refused)",
    ("InputStyleExamplePost", "url"): "an example without a URL is meaningless (and refused)",
}

_STABLE_PAYLOADS = ("ModelPayloadStyleStable", "ModelPayloadRootStable", "ModelGenerationInputStable")
_POPS = ("PopInput", "PopInputStable", "PopInputKobold")

# Input defaults that differ from the swagger's: (model, field) -> (swagger default, live default).
DEFAULT_DIFFERENCES: dict[tuple[str, str], tuple[object, object]] = {
    ("PatchExistingFilter", "replacement"): ("", None),  # a patch without it keeps the filter's own
    ("GenerationInputStable", "nsfw"): (False, True),
    ("GenerationInputStable", "censor_nsfw"): (False, True),
    ("GenerationInputStable", "validated_backends"): (True, False),
    ("GenerationInputKobold", "validated_backends"): (True, False),
    **{(m, "cfg_scale"): (7.5, 5.0) for m in _STABLE_PAYLOADS},
    **{(m, "karras"): (False, True) for m in _STABLE_PAYLOADS},
    **{(m, "nsfw"): (False, True) for m in _POPS},
    **{(m, "extra_slow_worker"): (True, False) for m in _POPS},
    ("PopInputStable", "allow_controlnet"): (True, False),
    ("PopInputStable", "allow_sdxl_controlnet"): (True, False),
    ("PopInputStable", "allow_lora"): (True, False),
    ("PopInputStable", "limit_max_steps"): (True, False),
    ("InterrogationPopInput", "max_tiles"): (16, 80),
    # a patch without them keeps the style's or collection's own (POST applies the swagger's defaults)
    ("InputModelCollection", "public"): (True, None),
    **{(m, "public"): (True, None) for m in ("ModelStylePatchStable", "ModelStylePatchKobold")},
    **{(m, "nsfw"): (False, None) for m in ("ModelStylePatchStable", "ModelStylePatchKobold")},
    # a style sets only what it says: a default here would override the request's own (ADR 0024)
    ("ModelStyleInputParamsKobold", "min_p"): (0.0, None),
    ("ModelStyleInputParamsKobold", "smoothing_factor"): (0.0, None),
    ("ModelStyleInputParamsKobold", "dynatemp_range"): (0.0, None),
    ("ModelStyleInputParamsKobold", "dynatemp_exponent"): (1.0, None),
}


def contract_models() -> dict[str, type[HordeModel]]:
    """Every model exported by horde.contract, by class name."""
    found: dict[str, type[HordeModel]] = {}
    for name in contract.__all__:
        obj = getattr(contract, name)
        if isinstance(obj, type) and issubclass(obj, HordeModel):
            found[obj.__name__] = obj
    return found


def swagger_models() -> dict[str, type[HordeModel]]:
    """The contract models that carry a swagger definition's name."""
    return {n: m for n, m in contract_models().items() if n not in NOT_IN_SWAGGER}
