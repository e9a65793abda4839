"""The v2 endpoints of the request and job lifecycle, for image, text and alchemy.

Thin: parse into a contract model, take dependencies, call one service function, answer with a contract
model (the route's `response_model` serialises it). Pops and status polls, the hottest paths, answer
their pre-built bodies as JSON (their shapes are the response models'; ADR 0011 says why).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse

from horde.contract import (
    AestheticsPayload,
    GenerationInputKobold,
    GenerationInputStable,
    GenerationPayloadKobold,
    GenerationPayloadStable,
    GenerationSubmitted,
    InterrogationPopInput,
    InterrogationPopPayload,
    InterrogationStatus,
    InterrogationSubmitInput,
    ModelInterrogationInputStable,
    PopInputKobold,
    PopInputStable,
    RequestAsync,
    RequestInterrogationResponse,
    RequestStatusCheck,
    RequestStatusKobold,
    RequestStatusStable,
    SubmitInputKobold,
    SubmitInputStable,
)
from horde.contract import ProblemJob as ProblemJobOut
from horde.contract.common import HordeModel
from horde.server.auth import ClientAgent, ClientIP, CurrentUser, HordeDep, ReadConn, WorkerCall
from horde.server.jobs import problems, ratings, service
from horde.server.jobs.kinds.base import Accepted
from horde.server.jobs.waiting import SUPPORTED_HEADER, WAIT_HEADER, pop_waiting, status_waiting, wait_seconds
from horde.server.kit.routing import HordeRoute
from horde.server.observe.metrics import observe_pop
from horde.server.state import Horde

router = APIRouter(tags=["v2"], route_class=HordeRoute)
# our extension on creations (the reference has it on transfers): a retry returns the first answer
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


def _waited(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers={SUPPORTED_HEADER: "1"})


async def _status(request: Request, kind: str, id: str, *, full: bool = True) -> JSONResponse:
    # no dependencies: status polls are the commonest request of all, and solving them costs
    horde: Horde = request.app.state.horde
    seconds = wait_seconds(horde, request.headers.get(WAIT_HEADER))
    status = await status_waiting(
        horde, kind=kind, raw_id=id, full=full, wait=seconds, disconnected=request.is_disconnected
    )
    return _waited(status)


async def _pop(call: WorkerCall, kind: str, body: Any) -> JSONResponse:
    seconds = wait_seconds(call.horde, call.wait)
    result = await pop_waiting(
        call.horde, kind=kind, body=body, user=call.user, ipaddr=call.ip, wait=seconds,
        disconnected=call.request.is_disconnected,
    )  # fmt: skip
    observe_pop(kind, result)
    return _waited(result)


async def _submit(call: WorkerCall, kind: str, body: Any) -> GenerationSubmitted:
    return await service.submit_job(call.horde, kind=kind, body=body, user=call.user)


async def _accept(
    horde: HordeDep, kind: str, body: Any, user: Any, agent: str, ip: str, response: Response, key: str | None
) -> Accepted:
    if getattr(body, "dry_run", False):
        response.status_code = 200  # a dry run only prices the request
    elif key is not None:
        return await service.submit_once(
            horde, key=key, kind=kind, body=body, user=user, client_agent=agent, ipaddr=ip
        )
    return await service.submit_request(horde, kind=kind, body=body, user=user, client_agent=agent, ipaddr=ip)


# image
@router.post("/generate/async", response_model=RequestAsync, status_code=202)
async def post_image_async(
    body: GenerationInputStable,
    horde: HordeDep,
    user: CurrentUser,
    agent: ClientAgent,
    ip: ClientIP,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    return await _accept(horde, "image", body, user, agent, ip, response, idempotency_key)


@router.get("/generate/check/{id}", response_model=RequestStatusCheck)
async def get_image_check(id: str, request: Request) -> JSONResponse:
    return await _status(request, "image", id, full=False)


@router.get("/generate/status/{id}", response_model=RequestStatusStable)
async def get_image_status(id: str, request: Request) -> JSONResponse:
    return await _status(request, "image", id)


@router.delete("/generate/status/{id}", response_model=RequestStatusStable)
async def delete_image_status(id: str, horde: HordeDep) -> HordeModel:
    return await service.cancel(horde, kind="image", raw_id=id)


@router.post("/generate/pop", response_model=GenerationPayloadStable)
async def post_image_pop(body: PopInputStable, call: WorkerCall) -> JSONResponse:
    return await _pop(call, "image", body)


@router.post("/generate/submit", response_model=GenerationSubmitted)
async def post_image_submit(body: SubmitInputStable, call: WorkerCall) -> GenerationSubmitted:
    return await _submit(call, "image", body)


# text
@router.post(
    "/generate/rate/{id}",
    response_model=GenerationSubmitted,
    description="Aesthetic ratings are not recorded or rewarded on this horde: its requests are never "
    "shared, so a completed request's rating is refused with AestheticsNotPublic, as the reference "
    "refuses ratings of unshared requests (docs/decisions/0017).",
)
async def post_rating(id: str, body: AestheticsPayload, conn: ReadConn) -> GenerationSubmitted:
    await ratings.rate_request(conn, raw_id=id, body=body)


@router.post("/generate/text/async", response_model=RequestAsync, status_code=202)
async def post_text_async(
    body: GenerationInputKobold,
    horde: HordeDep,
    user: CurrentUser,
    agent: ClientAgent,
    ip: ClientIP,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    return await _accept(horde, "text", body, user, agent, ip, response, idempotency_key)


@router.get("/generate/text/status/{id}", response_model=RequestStatusKobold)
async def get_text_status(id: str, request: Request) -> JSONResponse:
    return await _status(request, "text", id)


@router.delete("/generate/text/status/{id}", response_model=RequestStatusKobold)
async def delete_text_status(id: str, horde: HordeDep) -> HordeModel:
    return await service.cancel(horde, kind="text", raw_id=id)


@router.post("/generate/text/pop", response_model=GenerationPayloadKobold)
async def post_text_pop(body: PopInputKobold, call: WorkerCall) -> JSONResponse:
    return await _pop(call, "text", body)


@router.post("/generate/text/submit", response_model=GenerationSubmitted)
async def post_text_submit(body: SubmitInputKobold, call: WorkerCall) -> GenerationSubmitted:
    return await _submit(call, "text", body)


# alchemy
@router.post("/interrogate/async", response_model=RequestInterrogationResponse, status_code=202)
async def post_interrogate_async(
    body: ModelInterrogationInputStable,
    horde: HordeDep,
    user: CurrentUser,
    agent: ClientAgent,
    ip: ClientIP,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    return await _accept(horde, "alchemy", body, user, agent, ip, response, idempotency_key)


@router.get("/interrogate/status/{id}", response_model=InterrogationStatus)
async def get_interrogate_status(id: str, request: Request) -> JSONResponse:
    return await _status(request, "alchemy", id)


@router.delete("/interrogate/status/{id}", response_model=InterrogationStatus)
async def delete_interrogate_status(id: str, horde: HordeDep) -> HordeModel:
    return await service.cancel(horde, kind="alchemy", raw_id=id)


@router.post("/interrogate/pop", response_model=InterrogationPopPayload)
async def post_interrogate_pop(body: InterrogationPopInput, call: WorkerCall) -> JSONResponse:
    return await _pop(call, "alchemy", body)


@router.post("/interrogate/submit", response_model=GenerationSubmitted)
async def post_interrogate_submit(body: InterrogationSubmitInput, call: WorkerCall) -> GenerationSubmitted:
    return await _submit(call, "alchemy", body)


# this horde's extension (not in the reference): the jobs workers reported as CSAM, for moderators
@router.get("/problem_jobs", response_model=list[ProblemJobOut])
async def get_problem_jobs(user: CurrentUser, conn: ReadConn, page: int = 1) -> list[ProblemJobOut]:
    return await problems.list_problem_jobs(conn, page=page)
