"""The OpenAI-compatible API under /v1 (an extension): thin routes over `openai/service.py`.

The key is the horde's API key, sent as `Authorization: Bearer <key>` (the `apikey` header works too);
errors answer OpenAI's `{"error": {...}}` shape (errors.py shapes every error of a /v1 path).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from horde.contract.openai import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    ErrorResponse,
    ImageGenerationRequest,
    ImagesResponse,
    ModelList,
)
from horde.server.auth import ClientAgent, ClientIP, CurrentUser, HordeDep
from horde.server.kit.routing import HordeRoute
from horde.server.openai import service

ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 429, 502, 504)
}
router = APIRouter(prefix="/v1", tags=["openai"], responses=ERRORS, route_class=HordeRoute)


@router.get("/models", response_model=ModelList)
async def get_models(horde: HordeDep) -> ModelList:
    return await service.models(horde)


@router.post("/completions", response_model=Completion)
async def post_completions(
    body: CompletionRequest,
    request: Request,
    horde: HordeDep,
    user: CurrentUser,
    agent: ClientAgent,
    ip: ClientIP,
) -> Completion:
    return await service.complete(
        horde, body, user=user, client_agent=agent, ipaddr=ip, disconnected=request.is_disconnected
    )


@router.post("/chat/completions", response_model=ChatCompletion)
async def post_chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    horde: HordeDep,
    user: CurrentUser,
    agent: ClientAgent,
    ip: ClientIP,
) -> ChatCompletion:
    return await service.chat(
        horde, body, user=user, client_agent=agent, ipaddr=ip, disconnected=request.is_disconnected
    )


@router.post("/images/generations", response_model=ImagesResponse)
async def post_images(
    body: ImageGenerationRequest,
    request: Request,
    horde: HordeDep,
    user: CurrentUser,
    agent: ClientAgent,
    ip: ClientIP,
) -> ImagesResponse:
    return await service.images(
        horde, body, user=user, client_agent=agent, ipaddr=ip, disconnected=request.is_disconnected
    )
