"""The running horde: everything a request handler or a scheduled task needs, built in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from horde.server.catalog import ModelCatalog
from horde.server.config import Settings
from horde.server.db import Database
from horde.server.images.sources import SourcePolicy
from horde.server.images.storage import Storage
from horde.server.kit.answers import Answers
from horde.server.kit.clock import Clock
from horde.server.workers.capabilities import CapabilityTable

if TYPE_CHECKING:
    from horde.server.jobs.snapshot import Snapshots
    from horde.server.jobs.store import RequestCache
    from horde.server.kit.notify import Notifier
    from horde.server.users.cache import UserCache
    from horde.server.webhooks.service import WebhookSender
    from horde.server.workers.cache import WorkerCache


@dataclass
class Horde:
    settings: Settings
    db: Database
    clock: Clock
    storage: Storage
    catalog: ModelCatalog
    capabilities: CapabilityTable
    http: httpx.AsyncClient
    pepper: str
    storage_identity: str = ""  # nodes serve together only when these match (cluster/nodes.py)
    users: UserCache = field(init=False)
    workers: WorkerCache = field(init=False)
    snapshots: Snapshots = field(init=False)
    requests: RequestCache = field(init=False)
    notifier: Notifier = field(init=False)
    webhooks: WebhookSender = field(init=False)
    answers: Answers = field(init=False)

    @property
    def source_policy(self) -> SourcePolicy:
        return SourcePolicy(
            allow_private=self.settings.allow_private_source_urls,
            timeout=self.settings.source_fetch_timeout,
            max_bytes=self.settings.source_max_bytes,
        )
