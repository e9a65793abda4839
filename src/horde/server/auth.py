"""Request dependencies: the running horde, the caller's key and user, client agent and address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from horde.contract.rc import RC
from horde.server.clientip import client_ip as scope_client_ip
from horde.server.errors import HordeError
from horde.server.state import Horde
from horde.server.users.principal import Principal

DEFAULT_CLIENT_AGENT = "unknown:0:unknown"


async def get_horde(request: Request) -> Horde:  # async: sync dependencies hop to a thread
    horde: Horde = request.app.state.horde
    return horde


HordeDep = Annotated[Horde, Depends(get_horde)]


def _api_key(request: Request) -> str | None:
    key = request.headers.get("apikey")
    return key.strip() if key is not None else None


async def _principal(horde: Horde, key: str) -> Principal:
    user = horde.users.cached(key)
    if user is None:
        async with horde.db.autocommit() as conn:
            user = await horde.users.by_key(conn, key)
    if user is None:
        raise HordeError(RC.InvalidAPIKey, "No user matching sent API Key. Have you remembered to register?")
    if user.deleted:
        raise HordeError(RC.DeletedUser, "This user has been deleted")
    return user


async def current_user(request: Request, horde: HordeDep) -> Principal:
    """The user of the `apikey` header (the anonymous key included); the header is required."""
    key = _api_key(request)
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
    return await _principal(horde, key)


async def optional_user(request: Request, horde: HordeDep) -> Principal | None:
    """The user of the `apikey` header when one is sent (it only raises the detail level)."""
    key = _api_key(request)
    return await _principal(horde, key) if key else None


async def moderator_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not (user.moderator or user.admin):
        raise HordeError(RC.NotModerator, "Only moderators can do this")
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
ModeratorUser = Annotated[Principal, Depends(moderator_user)]


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
    return Call(request, horde, user, scope_client_ip(request.scope), request.headers.get("horde-wait"))


WorkerCall = Annotated[Call, Depends(worker_call)]
