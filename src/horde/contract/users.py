"""User bodies: `GET /find_user`, `GET /users`, `GET|PUT /users/{id}`.

`UserDetails` has three detail levels (SEMANTICS §1.5): public fields are required here; the fields
shown only to the user themself (level 1) or to moderators (level 2) are omitted below that level.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from horde.contract import limits
from horde.contract.common import HordeModel, Omittable


class UserKudosDetails(HordeModel):
    """Where a user's kudos came from and went."""

    accumulated: float = 0
    gifted: float = 0
    donated: float = 0
    admin: float = 0
    received: float = 0
    recurring: float = 0
    awarded: float = 0
    styled: float = 0


class UserThingRecords(HordeModel):
    """Megapixelsteps and tokens generated or requested."""

    megapixelsteps: float = 0
    tokens: int = 0


class UserAmountRecords(HordeModel):
    """Counts per kind generated, requested or styled."""

    image: int = 0
    text: int = 0
    interrogation: int = 0


class UserRecords(HordeModel):
    """A user's usage and contribution records."""

    usage: UserThingRecords = Field(default_factory=UserThingRecords)
    contribution: UserThingRecords = Field(default_factory=UserThingRecords)
    fulfillment: UserAmountRecords = Field(default_factory=UserAmountRecords)
    request: UserAmountRecords = Field(default_factory=UserAmountRecords)
    style: UserAmountRecords = Field(default_factory=UserAmountRecords)


class UsageDetails(HordeModel):
    """Obsolete: sent empty (`records.usage` replaces it)."""

    megapixelsteps: Omittable[float] = None
    requests: Omittable[int] = None


class ContributionsDetails(HordeModel):
    """Obsolete: sent empty (`records.contribution` replaces it)."""

    megapixelsteps: Omittable[float] = None
    fulfillments: Omittable[int] = None


class UserActiveGenerations(HordeModel):
    """Ids of a user's requests in progress, per kind (UUIDs: horde-sdk parses them as such)."""

    text: list[str] = Field(default_factory=list)
    image: list[str] = Field(default_factory=list)
    alchemy: list[str] = Field(default_factory=list)


class MonthlyKudos(HordeModel):
    """A user's recurring kudos."""

    amount: int = 0
    last_received: Omittable[datetime] = None


class ResponseModelStylesShort(HordeModel):
    """A style's name and id."""

    name: str
    id: str


class ResponseModelStylesUser(ResponseModelStylesShort):
    """A style owned by a user."""

    type: Literal["image", "text"]


class UserDetails(HordeModel):
    """GET /users/{id}, GET /find_user and GET /users items."""

    username: str
    id: int
    kudos: float
    evaluating_kudos: Omittable[float] = None
    concurrency: int
    worker_invited: int
    moderator: bool
    kudos_details: UserKudosDetails = Field(default_factory=UserKudosDetails)
    worker_count: int
    worker_ids: Omittable[list[Annotated[str, Field(min_length=36, max_length=36)]]] = None
    styles: list[ResponseModelStylesUser] = Field(default_factory=list)
    sharedkey_ids: Omittable[list[str]] = None
    active_generations: Omittable[UserActiveGenerations] = None
    monthly_kudos: Omittable[MonthlyKudos] = None
    trusted: bool
    flagged: bool
    vpn: Omittable[bool] = None
    service: bool
    education: bool
    customizer: bool
    special: Omittable[bool] = None
    deleted: bool
    suspicious: Omittable[int] = None
    pseudonymous: bool
    contact: Omittable[str] = None
    admin_comment: Omittable[str] = None
    proxy_passkey: Omittable[str] = None
    account_age: int
    usage: UsageDetails = Field(default_factory=UsageDetails)
    contributions: ContributionsDetails = Field(default_factory=ContributionsDetails)
    records: UserRecords = Field(default_factory=UserRecords)


class ModifyUserInput(HordeModel):
    """PUT /users/{id} body; who may set which field is in SEMANTICS §1.5."""

    kudos: Omittable[float] = None  # a delta, admins only
    concurrency: Omittable[int] = Field(default=None, ge=0, le=limits.MAX_CONCURRENCY)
    usage_multiplier: Omittable[float] = Field(
        default=None, ge=limits.MIN_USAGE_MULTIPLIER, le=limits.MAX_USAGE_MULTIPLIER
    )
    worker_invited: Omittable[int] = Field(default=None, ge=0, le=limits.MAX_INT32)
    moderator: Omittable[bool] = None
    public_workers: Omittable[bool] = None
    monthly_kudos: Omittable[int] = None
    username: Omittable[str] = Field(default=None, min_length=3, max_length=100)
    trusted: Omittable[bool] = None
    flagged: Omittable[bool] = None
    customizer: Omittable[bool] = None
    vpn: Omittable[bool] = None
    service: Omittable[bool] = None
    education: Omittable[bool] = None
    special: Omittable[bool] = None
    undelete: Omittable[bool] = None
    filtered: Omittable[bool] = None
    reset_suspicion: Omittable[bool] = None
    generate_proxy_passkey: bool = False
    contact: Omittable[str] = Field(default=None, min_length=5, max_length=500)
    admin_comment: Omittable[str] = Field(default=None, min_length=5, max_length=500)


class ModifyUser(HordeModel):
    """PUT /users/{id} reply: only the keys that changed."""

    new_kudos: Omittable[float] = None
    concurrency: Omittable[int] = None
    usage_multiplier: Omittable[float] = None
    worker_invited: Omittable[int] = None
    moderator: Omittable[bool] = None
    public_workers: Omittable[bool] = None
    username: Omittable[str] = None
    monthly_kudos: Omittable[int] = None
    trusted: Omittable[bool] = None
    flagged: Omittable[bool] = None
    customizer: Omittable[bool] = None
    vpn: Omittable[bool] = None
    service: Omittable[bool] = None
    education: Omittable[bool] = None
    special: Omittable[bool] = None
    undeleted: Omittable[bool] = None
    new_suspicion: Omittable[int] = None
    contact: Omittable[str] = None
    admin_comment: Omittable[str] = Field(default=None, min_length=5, max_length=500)
    proxy_passkey: Omittable[str] = Field(default=None, min_length=16, max_length=16)
