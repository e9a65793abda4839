"""`/kudos/transfer` and `/kudos/award` (SEMANTICS.md 1.7)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from horde.contract import KudosAwarded, KudosAwardInput, KudosTransferInput, KudosTransferred
from horde.server.auth import Conn, CurrentUser, HordeDep
from horde.server.kit.routing import HordeRoute
from horde.server.kudos import transfers

router = APIRouter(tags=["v2"], route_class=HordeRoute)


@router.post("/kudos/transfer", response_model=KudosTransferred)
async def post_transfer(
    body: KudosTransferInput,
    horde: HordeDep,
    user: CurrentUser,
    conn: Conn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> KudosTransferred:
    done = await transfers.transfer_kudos(
        conn, sender=user, username=body.username, amount=body.amount, idempotency_key=idempotency_key,
        now=horde.clock.now(), pepper=horde.users.pepper,
    )  # fmt: skip
    return KudosTransferred(transferred=done.amount)


@router.post("/kudos/award", response_model=KudosAwarded)
async def post_award(body: KudosAwardInput, horde: HordeDep, user: CurrentUser, conn: Conn) -> KudosAwarded:
    awarded = await transfers.award_kudos(
        conn, username=body.username, amount=body.amount, now=horde.clock.now()
    )
    return KudosAwarded(awarded=awarded)
