"""Horde status bodies: `/status/models[/{name}]`, `/status/heartbeat`, `/status/performance`,
`/status/modes`, `/status/news`.
"""

from typing import Literal

from pydantic import Field

from horde.contract.common import HordeModel, ModelType, Omittable

ModelState = Literal["known", "custom", "all"]
"""`GET /status/models?model_state=` values (default "all"; `type` defaults to "image")."""


class ActiveModelLite(HordeModel):
    """A model and how many worker threads serve it."""

    name: str
    count: int


class ActiveModel(ActiveModelLite):
    """GET /status/models items (`eta` is 10000 when nobody serves the model)."""

    performance: float
    queued: float
    jobs: float
    eta: int
    type: ModelType


class HordePerformance(HordeModel):
    """GET /status/performance reply."""

    queued_requests: int
    queued_text_requests: int
    worker_count: int
    text_worker_count: int
    thread_count: int
    text_thread_count: int
    queued_megapixelsteps: float
    past_minute_megapixelsteps: float
    queued_forms: float
    interrogator_count: int
    interrogator_thread_count: int
    queued_tokens: float
    past_minute_tokens: float


class HordeModes(HordeModel):
    """GET /status/modes reply; `raid_mode` is shown to moderators only."""

    maintenance_mode: bool
    invite_only_mode: bool
    raid_mode: Omittable[bool] = None


class Newspiece(HordeModel):
    """GET /status/news items."""

    date_published: str
    newspiece: str
    importance: str
    tags: list[str] = Field(default_factory=list)
    title: Omittable[str] = None
    more_info_urls: list[str] = Field(default_factory=list)


class HordeDocument(HordeModel):
    """GET /documents/{terms,privacy,sponsors} reply: the document in the format asked for."""

    html: Omittable[str] = None
    markdown: Omittable[str] = None


class HeartbeatResponse(HordeModel):
    """GET /status/heartbeat reply (no swagger schema; horde-sdk requires `message` and `version`).

    The extra fields are what SEMANTICS §1.8 lists for this node; they are omitted when unset.
    """

    message: Literal["OK", "DOWN", "OVERLOADED", "DEGRADED"] = "OK"  # DEGRADED: ours, Redis unreachable
    version: str
    queue: Omittable[int] = None
    threads: Omittable[int] = None
    active_count: Omittable[int] = None
    db_connection: Omittable[bool] = None
    model_reference_problems: Omittable[list[str]] = None  # this horde's: what of the model lists failed
    redis_connection: Omittable[bool] = None  # ours: present when Redis is configured


class ServiceInfo(HordeModel):
    """GET /.well-known/serviceinfo (outside the API)."""

    version: str = "1.0"
    software: dict[str, str]
    api: dict[str, dict[str, str]]
