"""Every table of the server, imported in one place for Alembic and metadata consumers."""

from horde.server.cluster.models import ServerNode, ServerSecret
from horde.server.jobs.models import Job, Request, RequestModel, RequestWorker
from horde.server.kit.orm import Base
from horde.server.kudos.models import KudosBalance, KudosPosting
from horde.server.kudos.records import KudosTransfer, MonthlyKudos
from horde.server.messages.models import WorkerMessage
from horde.server.operations.models import HordeMode, IpTimeout
from horde.server.teams.models import Team, TeamEvent
from horde.server.users.models import User
from horde.server.webhooks.models import WebhookDelivery
from horde.server.workers.models import Worker

metadata = Base.metadata

__all__ = [
    "HordeMode",
    "IpTimeout",
    "Job",
    "KudosBalance",
    "KudosPosting",
    "KudosTransfer",
    "MonthlyKudos",
    "Request",
    "RequestModel",
    "RequestWorker",
    "ServerNode",
    "ServerSecret",
    "Team",
    "TeamEvent",
    "User",
    "WebhookDelivery",
    "Worker",
    "WorkerMessage",
    "metadata",
]
