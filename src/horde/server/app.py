"""The ASGI application: lifespan (engines, caches, scheduler), middleware, routers, error handlers."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Scope

from horde import __version__
from horde.server.answer_cache import AnswerCache, AnswerCacheMiddleware
from horde.server.api import API_ROUTERS, root_router
from horde.server.auth import install_guards
from horde.server.catalog import ModelCatalog, load_catalog
from horde.server.clientip import ClientIPMiddleware, ProxiedForMiddleware, TrustedProxies
from horde.server.cluster.nodes import registered
from horde.server.cluster.secrets import load_secrets
from horde.server.config import Settings
from horde.server.db import Database, open_database
from horde.server.errors import install_error_handlers
from horde.server.filters.cache import FilterCache
from horde.server.images.backends import open_storage
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.routes import LEAN
from horde.server.jobs.snapshot import Snapshots
from horde.server.jobs.statements import statements_for
from horde.server.jobs.store import RequestCache
from horde.server.kit.answers import Answers
from horde.server.kit.clock import Clock
from horde.server.kit.notify import Notifier
from horde.server.lean import LeanMiddleware, lean_routes
from horde.server.messages.board import MessageBoard
from horde.server.middleware import BodyGuardMiddleware, CORSMiddleware, FieldMaskMiddleware
from horde.server.migrate import upgrade_to_head
from horde.server.observe.metrics import LoopLagProbe
from horde.server.observe.middleware import ObserveMiddleware
from horde.server.observe.probe import PopProbe
from horde.server.operations import service as operations_service
from horde.server.operations.guard import Guard
from horde.server.operations.reputation import load_reputation
from horde.server.ratelimit import Counters, MemoryCounters, RateLimiter, RateLimitMiddleware, RedisCounters
from horde.server.redis import RedisHealth, connect_relay, redis_client
from horde.server.scheduler import Scheduler
from horde.server.state import Horde
from horde.server.users.cache import UserCache
from horde.server.users.principal import Principal
from horde.server.webhooks.service import WebhookSender
from horde.server.workers.cache import WorkerCache
from horde.server.workers.capabilities import load_table

log = logging.getLogger(__name__)


async def build_horde(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    catalog: ModelCatalog | None = None,
    db: Database | None = None,
) -> Horde:
    """Everything the server runs on, from settings (the app's lifespan and the tests use it; a test
    may hand in the database, tests/isolation.py)."""
    clock = clock or Clock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = db or open_database(
        settings.effective_database_url,
        pool_size=settings.db_pool_size,
        statement_cache=settings.db_statement_cache,
    )
    db.lock_file()
    if migrate:
        await upgrade_to_head(db)
    secrets = await load_secrets(db, settings, clock=clock)
    pepper = secrets.pepper
    http = httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=50))
    storage, storage_identity = open_storage(settings, signing=secrets.url_signing)
    if catalog is None:
        catalog = await load_catalog(settings.model_reference_image, settings.model_reference_text, http)
    horde = Horde(
        settings=settings, db=db, clock=clock, storage=storage, catalog=catalog,
        capabilities=load_table(settings.bridge_capabilities), http=http, pepper=pepper,
        webhook_http=httpx.AsyncClient(limits=httpx.Limits(max_connections=20)),
        storage_identity=storage_identity,
    )  # fmt: skip
    horde.started_at = clock.now()
    horde.users = UserCache(pepper=pepper, admins=settings.admin_ids, clock=clock)
    horde.workers = WorkerCache(clock)
    horde.statements = statements_for(db)
    horde.requests = RequestCache(clock, horde.statements)
    horde.notifier = Notifier()
    horde.filters = FilterCache(clock, interval=settings.filter_refresh_interval)
    horde.notifier.on_filters_changed = horde.filters.invalidate
    horde.answers = Answers(clock)
    horde.cache = _answer_cache(settings, clock)
    wire_cache(horde.cache, horde.answers, horde.notifier)
    horde.messages = MessageBoard(db, clock)
    horde.guard = Guard(db, clock)
    horde.reputation = load_reputation(settings, clock)
    horde.corrupt_prompt_hooks.append(partial(operations_service.time_out_corrupt_prompt, horde))
    horde.webhooks = WebhookSender(horde)
    horde.snapshots = Snapshots(
        db, clock, max_age=settings.snapshot_max_age, online_window=settings.worker_online_window,
        profile_of=lambda record: KINDS[record["kind"]].profile(
            horde, record, owner_trusted=bool(record.get("owner_trusted")), amount=1
        ),
        things_of=lambda kind, payload: KINDS[kind].things(payload),
        version_of=horde.notifier.work_version,
    )  # fmt: skip
    return horde


def _answer_cache(settings: Settings, clock: Clock) -> AnswerCache:
    client = None
    if settings.redis_url:
        client = redis_client(settings.redis_url, timeout=settings.redis_timeout)
    return AnswerCache(
        local_ttl=settings.cache_local_ttl, client=client, prefix=settings.redis_prefix,
        enabled=settings.answer_cache, clock=clock.now, wall=clock.now,
    )  # fmt: skip


def wire_cache(cache: AnswerCache, answers: Answers, notifier: Notifier) -> None:
    """A forget of the node's computed answers invalidates the cached answers of its tag on every node
    (through the relay), and what other nodes invalidate is dropped here (ADR 0026)."""
    answers.on_forget = cache.invalidate

    def drop_answers(tags: list[str]) -> None:
        for tag in tags:
            answers.drop(tag)

    cache.on_dropped.append(drop_answers)
    cache.on_invalidated = notifier.cache_invalidated
    notifier.on_cache_invalidated = cache.drop_local
    notifier.on_request_changed = lambda request_id: cache.request_changed(str(request_id))


async def close_horde(horde: Horde) -> None:
    await horde.cache.close()
    await horde.snapshots.close()
    await horde.workers.close()
    await horde.http.aclose()
    await horde.webhook_http.aclose()
    await horde.db.dispose()


def _counters(settings: Settings, health: RedisHealth, now: Callable[[], float]) -> Counters:
    if settings.redis_url:
        client = redis_client(settings.redis_url, timeout=settings.redis_timeout)
        return RedisCounters(client, settings.redis_prefix, now=now, health=health)
    return MemoryCounters(now=now)


def _whitelisting(limiter: RateLimiter) -> Callable[[Principal, str], Awaitable[None]]:
    async def whitelist(user: Principal, ipaddr: str) -> None:
        if user.is_trusted or user.education or user.service:
            await limiter.whitelist(ipaddr)

    return whitelist


async def _proxy_passkey(scope: Scope, passkey: str) -> bool:
    horde: Horde | None = getattr(scope["app"].state, "horde", None)
    try:
        return horde is not None and await horde.users.is_proxy_passkey(horde.db, passkey)
    except (OSError, SQLAlchemyError):  # the database is down: the request's own answer will say so
        return False


def create_app(settings: Settings | None = None, *, horde: Horde | None = None) -> FastAPI:
    """The horde's ASGI app; with `horde` given (tests), it serves that one and owns no lifespan."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        horde = await build_horde(settings)
        _serve(app, horde, redis_health)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(close_horde, horde)
            await stack.enter_async_context(registered(horde.db, horde.clock, storage=horde.storage_identity))
            if settings.redis_url:
                relay = await connect_relay(
                    settings.redis_url,
                    prefix=settings.redis_prefix,
                    notifier=horde.notifier,
                    health=redis_health,
                )
                stack.push_async_callback(relay.stop)
            scheduler = Scheduler(horde)
            horde.webhooks.start()
            stack.push_async_callback(horde.webhooks.stop)
            if settings.run_scheduler:
                scheduler.start()
                stack.push_async_callback(scheduler.stop)
            probe = LoopLagProbe()
            probe.start()
            stack.push_async_callback(probe.stop)
            if settings.pop_probe:  # bench only (issue 7): times each step of every pop
                pop_probe = PopProbe(Path(settings.pop_probe))
                pop_probe.install(horde)
                stack.push_async_callback(pop_probe.close)
            gc.collect()
            gc.freeze()  # keep start-up objects out of every later collection (see PERF.md)
            yield

    app = FastAPI(
        title="AI Horde",
        version=__version__,
        description="A self-hostable, drop-in implementation of the AI Horde API v2.",
        lifespan=lifespan if horde is None else None,
        docs_url="/api/",
        openapi_url="/api/openapi.json",
        telemetry=None if settings.telemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    redis_health = RedisHealth()
    install_error_handlers(app)
    for router in API_ROUTERS:
        app.include_router(router, prefix="/api/v2")
    app.include_router(root_router)

    @app.get("/api/swagger.json", include_in_schema=False)
    async def swagger() -> JSONResponse:
        return JSONResponse(app.openapi())

    install_guards(app)
    _install_middleware(app, settings, horde, redis_health)
    if horde is not None:
        _serve(app, horde, redis_health)
    return app


def _install_middleware(app: FastAPI, settings: Settings, horde: Horde | None, health: RedisHealth) -> None:
    """The layers every request passes, outermost last (each `add_middleware` wraps the ones before)."""
    if settings.lean_hot_paths:  # innermost: every layer below applies to the lean routes too (ADR 0020)
        app.add_middleware(LeanMiddleware, fastapi=app, routes=lean_routes(LEAN))
    app.add_middleware(AnswerCacheMiddleware)  # keeps unmasked bodies, lean or not (ADR 0026)
    app.add_middleware(FieldMaskMiddleware)  # masks the final body, after the cache
    app.add_middleware(BodyGuardMiddleware)
    if not settings.test_ratelimit_disabled:
        now = horde.clock.now if horde is not None else time.time
        app.state.rate_limiter = RateLimiter(_counters(settings, health, now), now=now)
        app.add_middleware(RateLimitMiddleware, limiter=app.state.rate_limiter)
    app.add_middleware(ProxiedForMiddleware, check=_proxy_passkey)  # after the client's IP is built
    if settings.trusted_proxies:  # without any, the client is the socket peer (`client_ip`)
        app.add_middleware(ClientIPMiddleware, proxies=TrustedProxies(settings.trusted_proxies))
    app.add_middleware(CORSMiddleware)
    app.add_middleware(ObserveMiddleware, metrics=settings.metrics)  # outermost: sees every answer


def _serve(app: FastAPI, horde: Horde, health: RedisHealth) -> None:
    """Attach the running horde to the app (and the app's rate limiter to the horde)."""
    app.state.horde = horde
    horde.redis_health = health
    horde.cache.watch(health)
    if limiter := getattr(app.state, "rate_limiter", None):
        horde.accepted_hooks.append(_whitelisting(limiter))
