"""The running horde: the resources plus the per-node caches and services built on them (`app.py`
builds it in the lifespan; request handlers and scheduled tasks receive it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from horde.server.answer_cache import AnswerCache
from horde.server.filters.cache import FilterCache
from horde.server.jobs.snapshot import Snapshots
from horde.server.jobs.statements import JobStatements
from horde.server.jobs.store import RequestCache
from horde.server.kit.answers import Answers
from horde.server.kit.notify import Notifier
from horde.server.messages.board import MessageBoard
from horde.server.operations.guard import Guard
from horde.server.operations.reputation import IpReputation
from horde.server.redis import RedisHealth
from horde.server.resources import Resources
from horde.server.users.cache import UserCache
from horde.server.users.principal import Principal
from horde.server.webhooks.service import WebhookSender
from horde.server.workers.cache import WorkerCache


@dataclass
class Horde(Resources):
    storage_identity: str = ""  # nodes serve together only when these match (cluster/nodes.py)
    statements: JobStatements = field(init=False)
    users: UserCache = field(init=False)
    workers: WorkerCache = field(init=False)
    snapshots: Snapshots = field(init=False)
    requests: RequestCache = field(init=False)
    notifier: Notifier = field(init=False)
    webhooks: WebhookSender = field(init=False)
    answers: Answers = field(init=False)
    cache: AnswerCache = field(init=False)  # the two-tier cache of the hot GET answers (ADR 0026)
    messages: MessageBoard = field(init=False)
    filters: FilterCache = field(init=False)
    # called with the client's address after a refused (corrupt) prompt: the IP countermeasures of
    # SEMANTICS.md 5 (issue 13 item 3) attach their timeout here
    corrupt_prompt_hooks: list[Callable[[str], Awaitable[None]]] = field(init=False, default_factory=list)
    # called with the requester and the client's address after a request is queued: the rate limits'
    # dynamic whitelist of trusted users' IPs attaches here (ratelimit.py)
    accepted_hooks: list[Callable[[Principal, str], Awaitable[None]]] = field(
        init=False, default_factory=list
    )
    guard: Guard = field(init=False)  # IP timeouts and modes, at most a second old
    reputation: IpReputation = field(init=False)
    # when this process started serving: a lease that ran out before it ran out while the horde was
    # down here, which is not the worker's fault (jobs/scheduled.py)
    started_at: float = field(init=False, default=0.0)
    redis_health: RedisHealth | None = field(init=False, default=None)  # None: no Redis configured
