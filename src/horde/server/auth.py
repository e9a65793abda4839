"""Request dependencies: the running horde, the caller (guarded by the access table), the request's
database connection, client agent and address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import Headers

from horde.contract.rc import RC
from horde.server import access
from horde.server.clientip import client_ip as scope_client_ip
from horde.server.errors import HordeError
from horde.server.sharedkeys.service import SharedKeyRow, find_shared_key, looks_like_key
from horde.server.sharedkeys.spending import expired_error, owner_of
from horde.server.state import Horde
from horde.server.users.principal import Principal

DEFAULT_CLIENT_AGENT = "unknown:0:unknown"


async def get_horde(request: Request) -> Horde:  # async: sync dependencies hop to a thread
    horde: Horde = request.app.state.horde
    return horde


HordeDep = Annotated[Horde, Depends(get_horde)]


def _api_key(request: Request) -> str | None:
    return key_of(request.headers)


def key_of(headers: Headers) -> str | None:
    """The `apikey` header, else the token of `Authorization: Bearer` (how OpenAI's clients send it)."""
    key = headers.get("apikey")
    if key is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key = token if scheme.lower() == "bearer" else None
    return key.strip() if key is not None else None


async def _principal(horde: Horde, key: str, *, deleted_pass: bool = False) -> Principal:
    user = horde.users.cached(key)
    if user is None:
        user = await horde.users.lookup(horde.db, key)
    if user is None:
        raise HordeError(RC.InvalidAPIKey, "No user matching sent API Key. Have you remembered to register?")
    if user.deleted and not deleted_pass:
        raise HordeError(RC.DeletedUser, "This user has been deleted")
    return user


async def current_user(request: Request, horde: HordeDep, *, deleted_pass: bool = False) -> Principal:
    """The user of the `apikey` header (the anonymous key included); the header is required; a deleted
    user's key only where `deleted_pass` (its route's access row says so)."""
    return await required_user(horde, _api_key(request), deleted_pass=deleted_pass)


async def required_user(horde: Horde, key: str | None, *, deleted_pass: bool = False) -> Principal:
    """The user of a required key (stripped): a missing or empty one is the missing header's 400."""
    if not key:
        raise RequestValidationError(
            [
                {
                    "loc": ("header", "apikey"),
                    "msg": "A User API key. Missing required parameter",
                    "type": "missing",
                }
            ]
        )
    return await _principal(horde, key, deleted_pass=deleted_pass)


async def optional_user(request: Request, horde: HordeDep) -> Principal | None:
    """The user of the `apikey` header when one is sent (it only raises the detail level)."""
    key = _api_key(request)
    return await _principal(horde, key) if key else None


def route_rule(request: Request) -> access.Rule:
    """The access table's row of the route this request matched (`install_guards`)."""
    rule: access.Rule = request.app.state.access[id(request.scope["route"])]
    return rule


async def caller(request: Request) -> Principal:
    """The `apikey` user (required), past the door of its route's access row."""
    rule = route_rule(request)
    user = await current_user(request, await get_horde(request), deleted_pass=rule.deleted_pass)
    access.admit_door(rule, user)
    return user


async def viewer(request: Request) -> Principal | None:
    """The `apikey` user when a key is sent, past the door of its route's access row."""
    user = await optional_user(request, await get_horde(request))
    access.admit_door(route_rule(request), user)
    return user


@dataclass(frozen=True, slots=True)
class Spender:
    """Whom a generate request bills: the `apikey` user, or a shared key's owner and the key."""

    user: Principal
    sharedkey: SharedKeyRow | None = None


async def spending_user(horde: Horde, key: str | None, rule: access.Rule) -> Spender:
    """Whom a generate request bills, past `rule`'s door: a shared key's owner and the key (SEMANTICS.md
    3.2: the shared key first), else the key's user; the lean path calls it too."""
    if key and looks_like_key(key):
        async with horde.db.autocommit() as conn:
            found = await find_shared_key(conn, pepper=horde.users.pepper, raw_key=key)
            if found is not None:
                if found.expired(horde.clock.now()):
                    raise expired_error()
                owner = await owner_of(conn, found, admins=horde.users.admins)
                access.admit_door(rule, owner)
                return Spender(owner, found)
    user = await required_user(horde, key)
    access.admit_door(rule, user)
    return Spender(user)


async def spender(request: Request) -> Spender:
    """The caller of the generate routes, which also take a shared key as the key."""
    return await spending_user(await get_horde(request), _api_key(request), route_rule(request))


CurrentUser = Annotated[Principal, Depends(caller)]
SpenderDep = Annotated[Spender, Depends(spender)]
OptionalUser = Annotated[Principal | None, Depends(viewer)]


async def _unit(request: Request) -> AsyncIterator[AsyncConnection]:
    async with (await get_horde(request)).db.unit() as conn:
        yield conn


async def _reader(request: Request) -> AsyncIterator[AsyncConnection]:
    async with (await get_horde(request)).db.autocommit() as conn:
        yield conn


# The request owns its connection (ADR 0006). scope="function": the unit commits when the handler has
# returned and before the response is sent, so a failed commit is the client's 5xx, never a 2xx.
# Declare it after the caller, so the key lookup never waits for a connection while holding one.
Conn = Annotated[AsyncConnection, Depends(_unit, scope="function")]
# Endpoints that only read take an autocommit connection: on SQLite a transaction takes the write lock.
ReadConn = Annotated[AsyncConnection, Depends(_reader, scope="function")]


async def client_agent(request: Request) -> str:
    headers = request.headers
    return headers.get("client-agent") or headers.get("client_agent") or DEFAULT_CLIENT_AGENT


async def client_ip(request: Request) -> str:
    return scope_client_ip(request.scope)


ClientAgent = Annotated[str, Depends(client_agent)]
ClientIP = Annotated[str, Depends(client_ip)]


@dataclass(frozen=True, slots=True)
class Call:
    """What a hot route needs of its request, resolved by one dependency instead of four (FastAPI's
    dependency solving is a large share of a pop's cost)."""

    request: Request
    horde: Horde
    user: Principal
    ip: str
    wait: str | None  # the `Horde-Wait` header


async def worker_call(request: Request) -> Call:
    """The caller of pop and submit: the `apikey` user (required), its address and its wait."""
    horde: Horde = request.app.state.horde
    user = await current_user(request, horde)
    access.admit_door(route_rule(request), user)
    return Call(request, horde, user, scope_client_ip(request.scope), request.headers.get("horde-wait"))


WorkerCall = Annotated[Call, Depends(worker_call)]


def _calls(dependant: Dependant) -> set[object]:
    calls: set[object] = {dependant.call}
    for sub in dependant.dependencies:
        calls |= _calls(sub)
    return calls


_READS_KEY = {
    caller: access.Key.REQUIRED,
    spender: access.Key.REQUIRED,
    worker_call: access.Key.REQUIRED,
    viewer: access.Key.OPTIONAL,
}


def _disagreement(name: str, row: access.Rule, route: APIRoute) -> str | None:
    reads = {_READS_KEY[c] for c in _calls(route.dependant) if c in _READS_KEY}
    looks_up = any(p.alias == "apikey" for p in route.dependant.header_params)
    expected = set() if row.key in (access.Key.NONE, access.Key.LOOKUP) else {row.key}
    if reads != expected or looks_up != (row.key is access.Key.LOOKUP):
        return f"{name}: reads the key as {sorted(reads) or 'nothing'}, its row says {row.key}"
    return None


def install_guards(app: FastAPI) -> None:
    """Give every route its row of the access table (the `caller`/`viewer` guards read it), and refuse
    to serve a route the table does not name, or one that reads the key otherwise than its row says."""
    problems: list[str] = []
    rules: dict[int, access.Rule] = {}
    served: set[str] = set()
    for context in iter_route_contexts(app.routes):
        for method in sorted(context.methods or ()):
            name = f"{method} {context.path}"
            served.add(name)
            row = access.ACCESS.get(name)
            if row is None:
                problems.append(f"{name}: no row in the access table")
                continue
            route = context.original_route
            if isinstance(route, APIRoute):
                rules[id(route)] = row
                problems += filter(None, [_disagreement(name, row, route)])
    problems += [f"{name}: a row for no route" for name in access.ACCESS if name not in served]
    if problems:
        raise RuntimeError("the access table and the routes disagree:\n" + "\n".join(problems))
    app.state.access = rules
