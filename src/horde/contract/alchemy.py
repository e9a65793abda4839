"""Interrogation ("alchemy") bodies: `/interrogate/async`, `/interrogate/status/{id}`, `pop`, `submit`.

Form results are free-form objects keyed by the form name (`{"caption": "a cat"}`,
`{"nsfw": true}`, `{"interrogation": {...}}`, `{"RealESRGAN_x4plus": "<url>"}`).
"""

from typing import Any, Literal

from pydantic import Field

from horde.contract import limits
from horde.contract.common import HordeModel, JsonObject, Omittable, PostProcessor

AlchemyForm = Literal[
    "caption", "interrogation", "nsfw", "vectorize", "palette", "describe", "aesthetic", PostProcessor
]
"""Form names: the seven analysis forms and every post-processor."""

FormState = Literal["waiting", "processing", "done", "faulted", "cancelled"]
InterrogationState = Literal["waiting", "processing", "done", "faulted", "cancelled", "partial"]


class ModelInterrogationFormStable(HordeModel):
    """One requested form."""

    name: AlchemyForm
    payload: Omittable[JsonObject] = None  # ModelInterrogationFormPayloadStable: free-form


class ModelInterrogationInputStable(HordeModel):
    """POST /interrogate/async body (duplicate form names are dropped by the server)."""

    forms: list[ModelInterrogationFormStable] = Field(default_factory=list)
    source_image: str  # SEMANTICS §1.3: required (a URL or base64)
    # not in the swagger, but the reference's parser reads it (SEMANTICS §1.3)
    trusted_workers: bool = False
    slow_workers: bool = True
    webhook: Omittable[str] = Field(
        default=None, min_length=limits.MIN_WEBHOOK_CHARS, max_length=limits.MAX_WEBHOOK_CHARS
    )


class RequestInterrogationResponse(HordeModel):
    """202 reply to an interrogation request."""

    id: str
    message: Omittable[str] = None


class InterrogationFormStatus(HordeModel):
    """The progress and result of one form (`state` is one of `FormState`)."""

    form: str
    state: str
    result: Omittable[JsonObject] = None  # InterrogationFormResult: free-form


class InterrogationStatus(HordeModel):
    """GET/DELETE /interrogate/status/{id} reply (`state` is one of `InterrogationState`)."""

    state: str
    forms: list[InterrogationFormStatus] = Field(default_factory=list)


class InterrogationPopInput(HordeModel):
    """POST /interrogate/pop body (a standalone definition: its limits differ from PopInput's)."""

    name: str  # required: the reference's parser refuses a pop without it
    priority_usernames: list[str] = Field(default_factory=list)
    forms: list[AlchemyForm] = Field(default_factory=list)
    amount: int = Field(default=1, ge=1, le=limits.MAX_POP_AMOUNT)
    bridge_agent: str = Field(default="unknown", max_length=limits.MAX_BRIDGE_AGENT_CHARS)
    threads: int = Field(default=1, ge=1, le=limits.MAX_ALCHEMY_THREADS)
    # SEMANTICS §1.3: parser default 80 (swagger: 16)
    max_tiles: int = Field(default=limits.DEFAULT_MAX_TILES, ge=1, le=limits.MAX_TILES)


class InterrogationPopFormPayload(HordeModel):
    """One popped form; post-processor forms carry an `r2_upload` URL for the result."""

    id: str
    form: AlchemyForm
    payload: Omittable[JsonObject] = None
    source_image: str
    r2_upload: Omittable[str] = None


class NoValidInterrogationsFound(HordeModel):
    """Why queued forms were skipped by this pop (always sent, 0 when none)."""

    worker_id: int = Field(default=0, ge=0)
    untrusted: int = Field(default=0, ge=0)
    bridge_version: int = Field(default=0, ge=0)


class InterrogationPopPayload(HordeModel):
    """POST /interrogate/pop reply; `forms` is empty when nothing was found."""

    forms: list[InterrogationPopFormPayload] = Field(default_factory=list)
    skipped: NoValidInterrogationsFound = Field(default_factory=NoValidInterrogationsFound)


class InterrogationSubmitInput(HordeModel):
    """POST /interrogate/submit body (an inline schema in the swagger, so the name is ours).

    The swagger types `result` as a string; live workers send an object keyed by the form name
    (SEMANTICS §1.3), and horde-sdk allows both.
    """

    id: str
    result: dict[str, Any] | str = ""
    state: str = "ok"  # "ok" or "faulted"
