"""`POST /api/v2/dev/test-user`, exactly as the reference's: enabled by HORDE_TEST_APIKEYS, loopback only."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request, Response

from horde.contract import DevTestUser, DevTestUserInput
from horde.contract.rc import RC
from horde.server.auth import Conn, HordeDep
from horde.server.clientip import is_forwarded, peer_ip
from horde.server.db import after_commit
from horde.server.errors import HordeError
from horde.server.kit.routing import HordeRoute
from horde.server.kudos import pricing
from horde.server.users import service as users

router = APIRouter(include_in_schema=False, route_class=HordeRoute)


def _loopback(request: Request) -> bool:
    """The socket peer is this machine and no proxy says it relays someone else's request."""
    try:
        local = ipaddress.ip_address(peer_ip(request.scope)).is_loopback
    except ValueError:
        return False
    return local and not is_forwarded(request.scope)


@router.post("/dev/test-user", response_model=DevTestUser)
async def post_test_user(
    request: Request, response: Response, horde: HordeDep, conn: Conn, body: DevTestUserInput | None = None
) -> DevTestUser:
    if not horde.settings.test_apikeys:
        raise HordeError("NotFound", "Not Found", status_code=404)
    if not _loopback(request):
        raise HordeError(RC.Forbidden, "The test-user endpoint answers only on the loopback interface")
    body = body or DevTestUserInput()
    new = await users.upsert_test_user(
        conn, username=body.username, oauth_id=body.oauth_id, moderator=body.moderator,
        trusted=body.trusted, kudos_hundredths=pricing.hundredths(body.kudos), pepper=horde.pepper,
        now=horde.clock.now(),
    )  # fmt: skip
    after_commit(conn, horde.users.forget_all)
    user = new.user
    response.status_code = 201 if new.created else 200
    return DevTestUser(
        api_key=new.api_key, user_id=str(user.id), username=user.username, alias=user.alias,
        kudos=body.kudos, trusted=user.trusted, moderator=user.moderator, created=new.created,
    )  # fmt: skip
