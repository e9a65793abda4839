"""What the running horde is made of below its domains: settings, the database, the clock, storage,
the model catalog, the capability table and the HTTP client.

Kinds, stores and the webhook sender take these; `state.Horde` adds the per-node caches and services
built on top of them (only `app.py` builds it), so nothing below the services imports the running horde.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from horde.server.catalog import ModelCatalog
from horde.server.config import Settings
from horde.server.db import Database
from horde.server.images.sources import SourcePolicy
from horde.server.images.storage import Storage
from horde.server.kit.clock import Clock
from horde.server.workers.capabilities import CapabilityTable


@dataclass
class Resources:
    settings: Settings
    db: Database
    clock: Clock
    storage: Storage
    catalog: ModelCatalog
    capabilities: CapabilityTable
    http: httpx.AsyncClient  # source fetches and the model reference
    webhook_http: httpx.AsyncClient  # webhooks only: a slow receiver cannot take the fetches' pool
    pepper: str

    @property
    def source_policy(self) -> SourcePolicy:
        return SourcePolicy(
            allow_private=self.settings.allow_private_source_urls,
            timeout=self.settings.source_fetch_timeout,
            max_bytes=self.settings.source_max_bytes,
        )
