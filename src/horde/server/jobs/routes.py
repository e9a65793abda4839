"""The v2 endpoints of the request and job lifecycle, for image, text and alchemy.

Thin: parse into a contract model, take dependencies, call one service function, answer with a contract
model (the route's `response_model` serialises it). Pops and status polls, the hottest paths, answer
their pre-built bodies as JSON (their shapes are the response models'; ADR 0011 says why).

The hot routes (pops, submits, the three asyncs, status polls) are also served by the lean handlers at
the end of this module (`LEAN`, ADR 0020), which call the same service functions as the FastAPI routes
above; those stay registered, for the OpenAPI and as the path taken with `HORDE_LEAN_HOT_PATHS=0`.
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
from horde.server.access import Key
from horde.server.auth import (
    DEFAULT_CLIENT_AGENT,
    ClientAgent,
    ClientIP,
    CurrentUser,
    HordeDep,
    ReadConn,
    Spender,
    SpenderDep,
    WorkerCall,
)
from horde.server.jobs import problems, ratings, service
from horde.server.jobs.kinds.base import Accepted
from horde.server.jobs.waiting import SUPPORTED_HEADER, WAIT_HEADER, pop_waiting, status_waiting, wait_seconds
from horde.server.kit.routing import HordeRoute
from horde.server.lean import Answer, Handler, LeanCall, json_answer
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


async def _accepted(
    horde: Horde, kind: str, body: Any, who: Spender, agent: str, ip: str, key: str | None
) -> tuple[int | None, Accepted]:
    """A request queued (or priced, for a dry run: answered 200 instead of 202), billed to `who`."""
    dry_run = bool(getattr(body, "dry_run", False))
    user, sharedkey = who.user, who.sharedkey
    if key is not None and not dry_run:
        accepted = await service.submit_once(
            horde,
            key=key,
            kind=kind,
            body=body,
            user=user,
            client_agent=agent,
            ipaddr=ip,
            sharedkey=sharedkey,
        )
        return None, accepted
    accepted = await service.submit_request(
        horde, kind=kind, body=body, user=user, client_agent=agent, ipaddr=ip, sharedkey=sharedkey
    )
    return (200 if dry_run else None), accepted


async def _accept(
    horde: HordeDep,
    kind: str,
    body: Any,
    who: Spender,
    agent: str,
    ip: str,
    response: Response,
    key: str | None,
) -> Accepted:
    status, accepted = await _accepted(horde, kind, body, who, agent, ip, key)
    if status is not None:
        response.status_code = status
    return accepted


# image
@router.post("/generate/async", response_model=RequestAsync, status_code=202)
async def post_image_async(
    body: GenerationInputStable,
    horde: HordeDep,
    who: SpenderDep,
    agent: ClientAgent,
    ip: ClientIP,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    return await _accept(horde, "image", body, who, agent, ip, response, idempotency_key)


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
    who: SpenderDep,
    agent: ClientAgent,
    ip: ClientIP,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    return await _accept(horde, "text", body, who, agent, ip, response, idempotency_key)


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
    return await _accept(horde, "alchemy", body, Spender(user), agent, ip, response, idempotency_key)


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


# --- the lean handlers (ADR 0020): the same work as the routes above, without FastAPI's machinery ----

_WAITED = ((SUPPORTED_HEADER.lower().encode(), b"1"),)  # what `_waited` adds


def _lean_status(kind: str, *, full: bool = True) -> Handler:
    async def status(call: LeanCall) -> Answer:
        seconds = wait_seconds(call.horde, call.header(WAIT_HEADER))
        body = await status_waiting(
            call.horde, kind=kind, raw_id=call.param, full=full, wait=seconds,
            disconnected=call.is_disconnected,
        )  # fmt: skip
        return json_answer(body, headers=_WAITED)

    return status


def _lean_pop(kind: str) -> Handler:
    async def pop(call: LeanCall) -> Answer:
        user, body = await call.worker()
        seconds = wait_seconds(call.horde, call.header(WAIT_HEADER))
        result = await pop_waiting(
            call.horde, kind=kind, body=body, user=user, ipaddr=call.ip, wait=seconds,
            disconnected=call.is_disconnected,
        )  # fmt: skip
        observe_pop(kind, result)
        return json_answer(result, headers=_WAITED)

    return pop


def _lean_submit(kind: str) -> Handler:
    async def submit(call: LeanCall) -> Answer:
        user, body = await call.worker()
        return call.model_answer(await service.submit_job(call.horde, kind=kind, body=body, user=user))

    return submit


def _lean_accept(kind: str, *, shared_keys: bool = True) -> Handler:
    """As `_accept`; `shared_keys`: the route takes a shared key as its key (as `SpenderDep`)."""

    async def accept(call: LeanCall) -> Answer:
        if shared_keys:
            who, body = await call.spender()
        else:
            user, body = await call.worker()
            who = Spender(user)
        agent = call.header("client-agent") or call.header("client_agent") or DEFAULT_CLIENT_AGENT
        key = call.header("idempotency-key")
        status, accepted = await _accepted(call.horde, kind, body, who, agent, call.ip, key)
        return call.model_answer(accepted, status=status)

    return accept


_V2 = "/api/v2"
# (method, full path template): (handler, how it reads the key; checked against its access row)
LEAN: dict[tuple[str, str], tuple[Handler, Key]] = {
    ("POST", f"{_V2}/generate/pop"): (_lean_pop("image"), Key.REQUIRED),
    ("POST", f"{_V2}/generate/text/pop"): (_lean_pop("text"), Key.REQUIRED),
    ("POST", f"{_V2}/interrogate/pop"): (_lean_pop("alchemy"), Key.REQUIRED),
    ("POST", f"{_V2}/generate/submit"): (_lean_submit("image"), Key.REQUIRED),
    ("POST", f"{_V2}/generate/text/submit"): (_lean_submit("text"), Key.REQUIRED),
    ("POST", f"{_V2}/interrogate/submit"): (_lean_submit("alchemy"), Key.REQUIRED),
    ("POST", f"{_V2}/generate/async"): (_lean_accept("image"), Key.REQUIRED),
    ("POST", f"{_V2}/generate/text/async"): (_lean_accept("text"), Key.REQUIRED),
    ("POST", f"{_V2}/interrogate/async"): (_lean_accept("alchemy", shared_keys=False), Key.REQUIRED),
    ("GET", f"{_V2}/generate/check/{{id}}"): (_lean_status("image", full=False), Key.NONE),
    ("GET", f"{_V2}/generate/status/{{id}}"): (_lean_status("image"), Key.NONE),
    ("GET", f"{_V2}/generate/text/status/{{id}}"): (_lean_status("text"), Key.NONE),
    ("GET", f"{_V2}/interrogate/status/{{id}}"): (_lean_status("alchemy"), Key.NONE),
}
