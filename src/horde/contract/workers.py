"""Worker bodies: `GET /workers`, `GET|PUT|DELETE /workers/{id}`, `GET /workers/name/{name}`.

`WorkerDetails` fields the reference always sends are required; the privileged ones (`paused`,
`ipaddr`, `suspicious`, `contact`, `owner`, `messages`) and the kind-specific ones (`max_pixels`...
for image, `max_length`... for text, `forms` for alchemy) are omitted when not shown.
"""

from datetime import datetime

from pydantic import Field

from horde.contract import limits
from horde.contract.common import HordeModel, Omittable, WorkerType


class TeamDetailsLite(HordeModel):
    """A worker's team; both null when it has none (what the reference's marshalling sends)."""

    name: str | None = None
    id: str | None = None


class WorkerKudosDetails(HordeModel):
    """Kudos a worker earned, split by source."""

    generated: float = 0
    uptime: int = 0


class ResponseModelMessage(HordeModel):
    """A message to a worker's owner, as listed in WorkerDetails."""

    worker_id: Omittable[str] = Field(default=None, min_length=36, max_length=36)
    message: str = Field(min_length=1, max_length=limits.MAX_MESSAGE_CHARS)
    origin: Omittable[str] = Field(default=None, min_length=1, max_length=255)
    expiry: int = Field(default=limits.DEFAULT_MESSAGE_EXPIRY_HOURS, ge=1, le=limits.MAX_MESSAGE_EXPIRY_HOURS)


class WorkerMessageDetails(ResponseModelMessage):
    """A worker message as `/workers/messages` answers it: what was sent, its id and when it expires."""

    id: str
    expires: datetime


class WorkerDetailsLite(HordeModel):
    """A worker's identity (also the item of a team's worker list)."""

    type: WorkerType
    name: str
    id: str
    online: bool


class WorkerDetails(WorkerDetailsLite):
    """GET /workers items and GET /workers/{id} reply."""

    requests_fulfilled: int
    kudos_rewards: float
    kudos_details: WorkerKudosDetails = Field(default_factory=WorkerKudosDetails)
    performance: str
    threads: int
    uptime: int
    maintenance_mode: bool
    paused: Omittable[bool] = None
    info: Omittable[str] = None
    nsfw: bool
    owner: Omittable[str] = None
    ipaddr: Omittable[str] = None
    trusted: bool
    flagged: bool
    suspicious: Omittable[int] = None
    uncompleted_jobs: int
    models: Omittable[list[str]] = None
    forms: Omittable[list[str]] = None
    team: TeamDetailsLite = Field(default_factory=TeamDetailsLite)
    contact: Omittable[str] = Field(default=None, min_length=5, max_length=500)
    bridge_agent: str = Field(max_length=limits.MAX_BRIDGE_AGENT_CHARS)
    max_pixels: Omittable[int] = None
    # swagger: number; horde-sdk parses these two as int, so they are whole numbers on our wire
    megapixelsteps_generated: Omittable[int] = None
    img2img: Omittable[bool] = None
    painting: Omittable[bool] = None
    post_processing: Omittable[bool] = Field(default=None, alias="post-processing")
    lora: Omittable[bool] = None
    controlnet: Omittable[bool] = None
    sdxl_controlnet: Omittable[bool] = None
    max_length: Omittable[int] = None
    max_context_length: Omittable[int] = None
    tokens_generated: Omittable[int] = None
    messages: Omittable[list[ResponseModelMessage]] = None


class ModifyWorkerInput(HordeModel):
    """PUT /workers/{id} body; `team: ""` leaves the team (SEMANTICS §1.4 for who may set what)."""

    maintenance: Omittable[bool] = None
    maintenance_msg: Omittable[str] = None
    paused: Omittable[bool] = None
    info: Omittable[str] = Field(default=None, max_length=limits.MAX_WORKER_INFO_CHARS)
    name: Omittable[str] = Field(
        default=None, min_length=limits.MIN_WORKER_NAME_CHARS, max_length=limits.MAX_WORKER_NAME_CHARS
    )
    team: Omittable[str] = Field(default=None, max_length=36)


class ModifyWorker(HordeModel):
    """PUT /workers/{id} reply: only the keys that changed."""

    maintenance: Omittable[bool] = None
    paused: Omittable[bool] = None
    info: Omittable[str] = None
    name: Omittable[str] = None
    team: Omittable[str] = None


class DeletedWorker(HordeModel):
    """DELETE /workers/{id} reply."""

    deleted_id: str
    deleted_name: str
