"""Every table of the server, imported in one place for Alembic and metadata consumers."""

from horde.server.cluster.models import ServerNode, ServerSecret
from horde.server.filters.models import Filter, FilterVersion
from horde.server.jobs.models import IdempotencyKey, Job, ProblemJob, Request, RequestModel, RequestWorker
from horde.server.kit.orm import Base
from horde.server.kudos.models import KudosBalance, KudosHold, KudosPosting
from horde.server.kudos.records import KudosTransfer, MonthlyKudos
from horde.server.messages.models import WorkerMessage
from horde.server.operations.models import HordeMode, IpTimeout
from horde.server.sharedkeys.models import SharedKey, SharedKeyCharge
from horde.server.stats.models import StatBucket, StatEvent, StatTotal
from horde.server.styles.models import (
    CollectionStyle,
    Style,
    StyleCollection,
    StyleExample,
    StyleModel,
    StyleTag,
    StyleUse,
)
from horde.server.teams.models import Team, TeamEvent
from horde.server.users.models import User, UserSuspicion
from horde.server.webhooks.models import WebhookDelivery
from horde.server.workers.models import Worker

metadata = Base.metadata

__all__ = [
    "CollectionStyle",
    "Filter",
    "FilterVersion",
    "HordeMode",
    "IdempotencyKey",
    "IpTimeout",
    "Job",
    "KudosBalance",
    "KudosHold",
    "KudosPosting",
    "KudosTransfer",
    "MonthlyKudos",
    "ProblemJob",
    "Request",
    "RequestModel",
    "RequestWorker",
    "ServerNode",
    "ServerSecret",
    "SharedKey",
    "SharedKeyCharge",
    "StatBucket",
    "StatEvent",
    "StatTotal",
    "Style",
    "StyleCollection",
    "StyleExample",
    "StyleModel",
    "StyleTag",
    "StyleUse",
    "Team",
    "TeamEvent",
    "User",
    "UserSuspicion",
    "WebhookDelivery",
    "Worker",
    "WorkerMessage",
    "metadata",
]
