"""HTTP plumbing and identities: keep-alive client pools, test users, worker fleets, client users.

Worker caps: a trusted owner may run 20 workers and 20 workers may share one IP (SEMANTICS.md 3.3 step 2),
so a fleet is split into owners of 20 workers each, and on a loopback target every owner connects from
its own loopback address (127.K.x.y; Linux routes all of 127/8 to `lo`). Names, owners and addresses
are derived from the worker's index, so a second run against the same horde reuses the same workers.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.common import Record

# httpcore 1.0.9 runs `import sniffio` on every lock set-up; without sniffio installed each failed import
# searches sys.path again (~1 ms per request here). A None entry makes the import fail at once.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

PER_OWNER = 20
BRIDGE = "horde-worker:0.1.0:https://example.invalid/horde-bench"
CLIENT_AGENT = "horde-bench:0.1.0:https://example.invalid/horde-bench"
# second octet of the loopback source address of each kind of fleet
NET_OCTET = {"text": 10, "image": 20, "alchemy": 30, "client": 40}
PATHS = {
    "text": ("/api/v2/generate/text/async", "/api/v2/generate/text/status/", "/api/v2/generate/text/pop",
             "/api/v2/generate/text/submit"),
    "image": ("/api/v2/generate/async", "/api/v2/generate/check/", "/api/v2/generate/pop",
              "/api/v2/generate/submit"),
    "alchemy": ("/api/v2/interrogate/async", "/api/v2/interrogate/status/", "/api/v2/interrogate/pop",
                "/api/v2/interrogate/submit"),
}  # fmt: skip


def async_path(kind: str) -> str:
    return PATHS[kind][0]


def status_path(kind: str) -> str:
    return PATHS[kind][1]


def pop_path(kind: str) -> str:
    return PATHS[kind][2]


def submit_path(kind: str) -> str:
    return PATHS[kind][3]


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def source_address(url: str, kind: str, group: int) -> str | None:
    """The loopback address a group of workers connects from (None: the system's choice)."""
    if not is_loopback(url):
        return None
    return f"127.{NET_OCTET[kind]}.{group // 250}.{group % 250 + 2}"


@dataclass(frozen=True)
class Identity:
    api_key: str
    user_id: int
    source: str | None = None


@dataclass(frozen=True)
class WorkerSpec:
    """One simulated worker: who it is, where it connects from and what it declares on pop."""

    index: int
    kind: str
    name: str
    api_key: str
    source: str | None
    pop: dict[str, Any]
    caps: dict[str, Any] = field(default_factory=dict)  # what the bench checks popped jobs against


@dataclass(frozen=True)
class Shard:
    """What one generator process gets: the target, its share of simulated workers or clients, knobs."""

    url: str
    workers: list[WorkerSpec] = field(default_factory=list)
    clients: list[Identity] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


class Pool:
    """One keep-alive httpx client per source address (HTTP/1.1, no retries)."""

    def __init__(self, url: str, *, connections: int = 100, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.connections = connections
        self.timeout = timeout
        self._clients: dict[str | None, httpx.AsyncClient] = {}

    def client(self, source: str | None = None) -> httpx.AsyncClient:
        if source not in self._clients:
            limits = httpx.Limits(
                max_connections=self.connections, max_keepalive_connections=self.connections
            )
            transport = httpx.AsyncHTTPTransport(local_address=source, limits=limits, retries=0)
            self._clients[source] = httpx.AsyncClient(
                base_url=self.url, transport=transport, timeout=self.timeout,
                headers={"Client-Agent": CLIENT_AGENT},
            )  # fmt: skip
        return self._clients[source]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def describe_error(response: httpx.Response) -> str:
    try:
        rc = response.json().get("rc", "")
    except ValueError:
        rc = ""
    return f"{response.status_code} {rc}".strip()


async def call(
    rec: Record,
    op: str,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    key: str | None = None,
    body: Any = None,
    content: bytes | None = None,
) -> httpx.Response | None:
    """One timed request; failures are counted under `op` and answer None."""
    headers = {"apikey": key} if key else None
    started = time.monotonic()
    try:
        response = await client.request(method, path, json=body, content=content, headers=headers)
    except httpx.HTTPError as exc:
        rec.error(op, type(exc).__name__)
        return None
    rec.time(op, started, time.monotonic())
    if response.status_code >= 400:
        rec.error(op, describe_error(response))
        return None
    return response


async def gather_limited(limit: int, coros: Iterable[Awaitable[Any]]) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[Any]) -> Any:
        async with semaphore:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def create_test_user(
    pool: Pool, oauth_id: str, *, kudos: float = 10_000_000, source: str | None = None
) -> Identity:
    """A trusted moderator test user (POST /api/v2/dev/test-user: HORDE_TEST_APIKEYS, loopback only)."""
    body = {"username": oauth_id, "oauth_id": oauth_id, "moderator": True, "trusted": True, "kudos": kudos}
    response = await pool.client(source).post("/api/v2/dev/test-user", json=body)
    if response.status_code >= 400:
        raise RuntimeError(
            f"POST /api/v2/dev/test-user answered {response.status_code} {response.text[:200]}: "
            "start the horde with HORDE_TEST_APIKEYS=1 and run the bench on the same machine"
        )
    data = response.json()
    return Identity(api_key=data["api_key"], user_id=int(data["user_id"]), source=source)


async def raise_limits(pool: Pool, user: Identity, **fields: int) -> bool:
    """Ask for more concurrency / worker invites (PUT /users/{id} as a moderator); False if refused."""
    try:
        response = await pool.client(user.source).put(
            f"/api/v2/users/{user.user_id}", json=fields, headers={"apikey": user.api_key}
        )
    except httpx.HTTPError:
        return False
    return response.status_code < 400


def same_pop(body: dict[str, Any]) -> Callable[[int], dict[str, Any]]:
    """A pop-body factory for a fleet whose workers all declare the same."""
    return lambda _index: dict(body)


_OWNERS: dict[tuple[str, str, int], Identity] = {}


async def _owner(pool: Pool, kind: str, group: int) -> Identity:
    # test-user hands out a new key on every call: one call per owner and process keeps keys valid
    key = (pool.url, kind, group)
    if key not in _OWNERS:
        source = source_address(pool.url, kind, group)
        _OWNERS[key] = await create_test_user(pool, f"bench-{kind}-owner-{group}", source=source)
    return _OWNERS[key]


async def make_fleet(
    pool: Pool,
    kind: str,
    count: int,
    pop_body: Callable[[int], dict[str, Any]],
    caps: Callable[[int], dict[str, Any]] | None = None,
) -> list[WorkerSpec]:
    """`count` workers of one kind, 20 per owner, each owner on its own loopback address."""
    groups = (count + PER_OWNER - 1) // PER_OWNER
    owners = await gather_limited(8, (_owner(pool, kind, g) for g in range(groups)))
    fleet = []
    for i in range(count):
        owner = owners[i // PER_OWNER]
        name = f"bench-{kind}-{i:04d}"
        body = {"name": name, "bridge_agent": BRIDGE, **pop_body(i)}
        caps_i = caps(i) if caps else {}
        fleet.append(WorkerSpec(i, kind, name, owner.api_key, owner.source, body, caps_i))
    return fleet


async def make_clients(
    pool: Pool, count: int, *, jobs_each: int, prefix: str = "bench-client"
) -> list[Identity]:
    """`count` client users; each may hold `jobs_each` queued jobs (one PUT, else the default 30)."""
    users = await gather_limited(8, (create_test_user(pool, f"{prefix}-{j}") for j in range(count)))
    if jobs_each > 30:
        raised = await gather_limited(8, (raise_limits(pool, u, concurrency=jobs_each) for u in users))
        if not all(raised):
            raise RuntimeError("PUT /users/{id} concurrency refused: use more clients instead")
    return list(users)


async def clients_for(pool: Pool, jobs: int, *, prefix: str = "bench-client") -> list[Identity]:
    """Enough client users to queue `jobs` jobs: few with raised concurrency, else 30 jobs per user."""
    first = await create_test_user(pool, f"{prefix}-0")
    if jobs > 30 and await raise_limits(pool, first, concurrency=jobs):
        return [first]
    return await make_clients(pool, max(1, (jobs + 29) // 30), jobs_each=30, prefix=prefix)


async def warm_up(pool: Pool, fleet: list[WorkerSpec]) -> Record:
    """One pop per worker (creates its record, fills the server's caches); jobs popped are faulted."""
    rec = Record()

    async def one(w: WorkerSpec) -> None:
        response = await call(
            rec, "warmup", pool.client(w.source), "POST", pop_path(w.kind), key=w.api_key, body=w.pop
        )
        if response is not None:
            await fault_popped(pool.client(w.source), w, response.json(), rec)

    unique = {w.name: w for w in fleet}  # a name's first pop creates it: never twice at once
    # gently (fewer than the server's pool of 10): set-up is not what is measured
    await gather_limited(8, (one(w) for w in unique.values()))
    if rec.errors:
        raise RuntimeError(f"worker warm-up failed: {dict(rec.errors)}")
    return rec


def popped_ids(kind: str, body: dict[str, Any]) -> list[str]:
    if kind == "alchemy":
        return [form["id"] for form in body.get("forms") or []]
    return list(body.get("ids") or ([body["id"]] if body.get("id") else []))


async def fault_popped(client: httpx.AsyncClient, w: WorkerSpec, body: dict[str, Any], rec: Record) -> int:
    """Hand back jobs a worker did not expect (someone else's queue on a shared horde)."""
    ids = popped_ids(w.kind, body)
    for job_id in ids:
        fault = {"id": job_id, "state": "faulted", "generation": "", "seed": 0}
        if w.kind == "alchemy":
            fault = {"id": job_id, "state": "faulted", "result": {}}
        await call(rec, "fault", client, "POST", submit_path(w.kind), key=w.api_key, body=fault)
    return len(ids)


def shard(items: list[Any], parts: int) -> list[list[Any]]:
    """Round-robin split into at most `parts` non-empty lists."""
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]
