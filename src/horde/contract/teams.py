"""Team bodies: `GET|POST /teams`, `GET|PATCH|DELETE /teams/{id}` (SEMANTICS.md 1.6)."""

from pydantic import Field

from horde.contract import limits
from horde.contract.common import HordeModel, Omittable
from horde.contract.status import ActiveModelLite
from horde.contract.workers import TeamDetailsLite, WorkerDetailsLite

_NAME_MIN, _NAME_MAX = limits.MIN_TEAM_NAME_CHARS, limits.MAX_TEAM_NAME_CHARS
_INFO_MIN, _INFO_MAX = limits.MIN_TEAM_INFO_CHARS, limits.MAX_TEAM_INFO_CHARS


class CreateTeamInput(HordeModel):
    """POST /teams body (trusted users only)."""

    name: str = Field(min_length=_NAME_MIN, max_length=_NAME_MAX)
    info: Omittable[str] = Field(default=None, min_length=_INFO_MIN, max_length=_INFO_MAX)


class ModifyTeamInput(HordeModel):
    """PATCH /teams/{id} body (the creator or a moderator)."""

    name: Omittable[str] = Field(default=None, min_length=_NAME_MIN, max_length=_NAME_MAX)
    info: Omittable[str] = Field(default=None, min_length=_INFO_MIN, max_length=_INFO_MAX)


class ModifyTeam(HordeModel):
    """POST /teams and PATCH /teams/{id} reply: the team as it now is."""

    id: str
    name: str
    info: Omittable[str] = None


class DeletedTeam(HordeModel):
    """DELETE /teams/{id} reply."""

    deleted_id: str
    deleted_name: str


class TeamDetails(TeamDetailsLite):
    """GET /teams items and GET /teams/{id} reply; the figures lag completions by a fold (ADR 0016)."""

    info: Omittable[str] = None
    requests_fulfilled: int = 0
    kudos: float = 0
    uptime: int = 0
    creator: str
    worker_count: int = 0
    workers: list[WorkerDetailsLite] = Field(default_factory=list)
    models: list[ActiveModelLite] = Field(default_factory=list)
    contributions: float = (
        0  # megapixelsteps; the reference sends it (TeamDetailsStable), the swagger lacks it
    )
