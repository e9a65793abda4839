"""The v2 endpoints of the request and job lifecycle, for image, text and alchemy.

Thin: parse into a contract model, take dependencies, call one service function, answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from horde.contract import (
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
from horde.server.auth import ClientAgent, ClientIP, CurrentUser, HordeDep
from horde.server.jobs import service
from horde.server.jobs.waiting import SUPPORTED_HEADER, pop_waiting, status_waiting, wait_seconds

router = APIRouter(tags=["v2"])
# An extension clients of the reference never send: park the request up to this many seconds.
Wait = Annotated[str | None, Header(alias="Horde-Wait", include_in_schema=False)]


def _json(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code)


def _waited(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers={SUPPORTED_HEADER: "1"})


async def _status(
    request: Request, horde: HordeDep, kind: str, id: str, wait: str | None, *, full: bool = True
) -> JSONResponse:
    seconds = wait_seconds(horde, wait)
    status = await status_waiting(
        horde, kind=kind, raw_id=id, full=full, wait=seconds, disconnected=request.is_disconnected
    )
    return _waited(status)


async def _pop(
    request: Request, horde: HordeDep, kind: str, body: Any, user: Any, ip: str, wait: str | None
) -> JSONResponse:
    seconds = wait_seconds(horde, wait)
    result = await pop_waiting(
        horde, kind=kind, body=body, user=user, ipaddr=ip, wait=seconds, disconnected=request.is_disconnected
    )
    return _waited(result)


async def _accept(horde: HordeDep, kind: str, body: Any, user: Any, agent: str, ip: str) -> JSONResponse:
    result = await service.submit_request(
        horde, kind=kind, body=body, user=user, client_agent=agent, ipaddr=ip
    )
    return _json(result, 200 if getattr(body, "dry_run", False) else 202)


# image
@router.post("/generate/async", response_model=RequestAsync, status_code=202)
async def post_image_async(
    body: GenerationInputStable, horde: HordeDep, user: CurrentUser, agent: ClientAgent, ip: ClientIP
) -> JSONResponse:
    return await _accept(horde, "image", body, user, agent, ip)


@router.get("/generate/check/{id}", response_model=RequestStatusCheck)
async def get_image_check(id: str, request: Request, horde: HordeDep, wait: Wait = None) -> JSONResponse:
    return await _status(request, horde, "image", id, wait, full=False)


@router.get("/generate/status/{id}", response_model=RequestStatusStable)
async def get_image_status(id: str, request: Request, horde: HordeDep, wait: Wait = None) -> JSONResponse:
    return await _status(request, horde, "image", id, wait)


@router.delete("/generate/status/{id}", response_model=RequestStatusStable)
async def delete_image_status(id: str, horde: HordeDep) -> JSONResponse:
    return _json(await service.cancel(horde, kind="image", raw_id=id))


@router.post("/generate/pop", response_model=GenerationPayloadStable)
async def post_image_pop(
    body: PopInputStable,
    request: Request,
    horde: HordeDep,
    user: CurrentUser,
    ip: ClientIP,
    wait: Wait = None,
) -> JSONResponse:
    return await _pop(request, horde, "image", body, user, ip, wait)


@router.post("/generate/submit", response_model=GenerationSubmitted)
async def post_image_submit(body: SubmitInputStable, horde: HordeDep, user: CurrentUser) -> JSONResponse:
    return _json(await service.submit_job(horde, kind="image", body=body, user=user))


# text
@router.post("/generate/text/async", response_model=RequestAsync, status_code=202)
async def post_text_async(
    body: GenerationInputKobold, horde: HordeDep, user: CurrentUser, agent: ClientAgent, ip: ClientIP
) -> JSONResponse:
    return await _accept(horde, "text", body, user, agent, ip)


@router.get("/generate/text/status/{id}", response_model=RequestStatusKobold)
async def get_text_status(id: str, request: Request, horde: HordeDep, wait: Wait = None) -> JSONResponse:
    return await _status(request, horde, "text", id, wait)


@router.delete("/generate/text/status/{id}", response_model=RequestStatusKobold)
async def delete_text_status(id: str, horde: HordeDep) -> JSONResponse:
    return _json(await service.cancel(horde, kind="text", raw_id=id))


@router.post("/generate/text/pop", response_model=GenerationPayloadKobold)
async def post_text_pop(
    body: PopInputKobold,
    request: Request,
    horde: HordeDep,
    user: CurrentUser,
    ip: ClientIP,
    wait: Wait = None,
) -> JSONResponse:
    return await _pop(request, horde, "text", body, user, ip, wait)


@router.post("/generate/text/submit", response_model=GenerationSubmitted)
async def post_text_submit(body: SubmitInputKobold, horde: HordeDep, user: CurrentUser) -> JSONResponse:
    return _json(await service.submit_job(horde, kind="text", body=body, user=user))


# alchemy
@router.post("/interrogate/async", response_model=RequestInterrogationResponse, status_code=202)
async def post_interrogate_async(
    body: ModelInterrogationInputStable, horde: HordeDep, user: CurrentUser, agent: ClientAgent, ip: ClientIP
) -> JSONResponse:
    return await _accept(horde, "alchemy", body, user, agent, ip)


@router.get("/interrogate/status/{id}", response_model=InterrogationStatus)
async def get_interrogate_status(
    id: str, request: Request, horde: HordeDep, wait: Wait = None
) -> JSONResponse:
    return await _status(request, horde, "alchemy", id, wait)


@router.delete("/interrogate/status/{id}", response_model=InterrogationStatus)
async def delete_interrogate_status(id: str, horde: HordeDep) -> JSONResponse:
    return _json(await service.cancel(horde, kind="alchemy", raw_id=id))


@router.post("/interrogate/pop", response_model=InterrogationPopPayload)
async def post_interrogate_pop(
    body: InterrogationPopInput,
    request: Request,
    horde: HordeDep,
    user: CurrentUser,
    ip: ClientIP,
    wait: Wait = None,
) -> JSONResponse:
    return await _pop(request, horde, "alchemy", body, user, ip, wait)


@router.post("/interrogate/submit", response_model=GenerationSubmitted)
async def post_interrogate_submit(
    body: InterrogationSubmitInput, horde: HordeDep, user: CurrentUser
) -> JSONResponse:
    return _json(await service.submit_job(horde, kind="alchemy", body=body, user=user))
