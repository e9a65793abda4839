"""Moderator prompt filters (`/filters`, SEMANTICS.md 1.10) and the problem jobs of this horde."""

from pydantic import ConfigDict, Field

from horde.contract.common import HordeModel, Omittable

FILTER_TYPE = Field(ge=10, le=29)
MAX_REGEX = 500  # characters: (regex, filter_type) is a unique index key


class PutNewFilter(HordeModel):
    """Body of `PUT /filters`: idempotent on (regex, filter_type)."""

    regex: str = Field(min_length=1, max_length=MAX_REGEX)
    filter_type: int = FILTER_TYPE
    description: Omittable[str] = Field(default=None, max_length=1000)
    replacement: str = Field(default="", max_length=1000)


class PatchExistingFilter(HordeModel):
    """Body of `PATCH /filters/{id}`: at least one field."""

    regex: Omittable[str] = Field(default=None, min_length=1, max_length=MAX_REGEX)
    filter_type: Omittable[int] = Field(default=None, ge=10, le=29)
    description: Omittable[str] = Field(default=None, max_length=1000)
    replacement: Omittable[str] = Field(default=None, max_length=1000)


class FilterDetails(HordeModel):
    id: str
    regex: str
    filter_type: int = Field(ge=10, le=29)
    description: Omittable[str] = None
    replacement: str = ""
    user: str  # the alias of the moderator who added or last changed it


class FilterCheck(HordeModel):
    """Body of `POST /filters`: a prompt to rate, against one filter type or all."""

    prompt: str = Field(max_length=100_000)
    filter_type: Omittable[int] = None


class FilterPromptSuspicion(HordeModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)  # the swagger's example and default are numbers

    suspicion: str = "0"  # a string on the wire (the reference's marshal); 2 or more would be blocked
    matches: list[str] = Field(default_factory=list)


class FilterRegex(HordeModel):
    filter_type: int = Field(ge=10, le=29)
    regex: str  # every filter of the type, OR-joined


class ProblemJob(HordeModel):
    """This horde's extension: a job a worker reported as CSAM, kept for moderators (no result)."""

    id: str
    request_id: str
    kind: str
    user_id: int
    worker_id: str
    ipaddr: str
    prompt: str
    model: str
    reported: str  # ISO 8601
