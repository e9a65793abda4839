"""OpenAI-compatible completions, chat completions and images on the horde's own request lifecycle.

A call becomes one native request (priced, held and charged as the native API charges it), and the
answer waits for it server-side (`jobs/waiting.py`), up to `HORDE_OPENAI_TIMEOUT` seconds. A client that
goes away, or a wait that runs out, cancels the request: jobs not yet handed out are never run, and
what the workers already hold is paid as on the native API. Streaming is not built yet: `stream: true`
is refused rather than answered in one piece as if it streamed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from horde.contract import GenerationInputKobold, GenerationInputStable
from horde.contract.openai import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionChoice,
    CompletionRequest,
    ImageData,
    ImageGenerationRequest,
    ImagesResponse,
    ModelCard,
    ModelList,
    SamplingInput,
)
from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.jobs import service as jobs
from horde.server.jobs.waiting import status_waiting
from horde.server.openai.templates import ROLES, Turn, template_for
from horde.server.state import Horde
from horde.server.status.service import active_models
from horde.server.users.principal import Principal

Disconnected = Callable[[], Awaitable[bool]]
MAX_STOP_SEQUENCES = 4  # OpenAI's own limit
SIZES = range(64, 3073, 64)


class OpenAIError(HordeError):
    """A refusal of something OpenAI's API has and the horde cannot honour, naming the parameter."""

    def __init__(
        self, message: str, *, param: str | None = None, status_code: int = 400, code: str = RC.BadRequest
    ) -> None:
        super().__init__(code, message, status_code=status_code)
        self.param = param


async def models(horde: Horde) -> ModelList:
    """The text models online workers serve now."""
    table = await active_models(horde, model_type="text", min_count=1, max_count=None, model_state="all")
    return ModelList(data=[ModelCard(id=model.name) for model in table])


async def _served(horde: Horde, model: str) -> None:
    """Refuse a model no online worker serves (OpenAI answers an unknown model at once; the native API
    would queue the request until it expires)."""
    if model not in {card.id for card in (await models(horde)).data}:
        message = f"The model `{model}` is not served by any worker of this horde now: see GET /v1/models"
        raise OpenAIError(message, param="model", status_code=404, code="model_not_found")


def _refuse_unsupported(body: SamplingInput) -> None:
    if body.stream:
        raise OpenAIError("stream is not supported by this horde yet; send stream: false", param="stream")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(body, name):
            raise OpenAIError(f"{name} is not supported by the horde's text workers", param=name)
    if body.logit_bias:
        raise OpenAIError("logit_bias is not supported by the horde's text workers", param="logit_bias")
    if body.seed is not None:
        raise OpenAIError("seed is not supported by the horde's text workers", param="seed")


def _stops(stop: str | list[str] | None, extra: str | None = None) -> list[str]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > MAX_STOP_SEQUENCES:
        raise OpenAIError(f"stop takes at most {MAX_STOP_SEQUENCES} sequences", param="stop")
    if any(not s for s in stops):
        raise OpenAIError("a stop sequence must not be empty", param="stop")
    return stops + ([extra] if extra and extra not in stops else [])


def _text_request(
    body: SamplingInput, prompt: str, *, max_tokens: int | None, stops: list[str]
) -> GenerationInputKobold:
    params: dict[str, Any] = {"n": body.n}
    if max_tokens is not None:
        params["max_length"] = max_tokens
    if body.temperature is not None:
        params["temperature"] = min(body.temperature, 5.0)
    if body.top_p is not None:
        params["top_p"] = max(body.top_p, 0.001)
    if stops:
        params["stop_sequence"] = stops
    return GenerationInputKobold.model_validate({"prompt": prompt, "params": params, "models": [body.model]})


def _cut(text: str, stops: list[str]) -> tuple[str, str]:
    """The text up to the first stop sequence (which OpenAI never returns), and the finish reason:
    `stop` when a stop sequence ended it, else `length` (a worker does not say why it stopped)."""
    cuts = [text.index(stop) for stop in stops if stop in text]
    return (text[: min(cuts)], "stop") if cuts else (text, "length")


async def _run(
    horde: Horde,
    *,
    kind: str,
    body: Any,
    user: Principal,
    client_agent: str,
    ipaddr: str,
    disconnected: Disconnected,
) -> dict[str, Any]:
    """Queue `body` as a native request and wait for it; cancel it if the client leaves or time runs out."""
    accepted = await jobs.submit_request(
        horde, kind=kind, body=body, user=user, client_agent=client_agent, ipaddr=ipaddr
    )
    raw_id = str(accepted.id)
    deadline = time.monotonic() + horde.settings.openai_timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            status = await status_waiting(
                horde, kind=kind, raw_id=raw_id, full=True, wait=max(min(remaining, 30.0), 0.0),
                disconnected=disconnected,
            )  # fmt: skip
            if status.get("done") or status.get("faulted"):
                break
            if await disconnected():
                raise OpenAIError("the client went away", status_code=499)
            if remaining <= 0:
                raise OpenAIError("the horde's workers did not finish in time", status_code=504)
    except BaseException:
        await jobs.cancel(horde, kind=kind, raw_id=raw_id)
        raise
    if status.get("faulted"):
        raise OpenAIError("the horde's workers failed this request", status_code=502)
    return status


def _texts(status: dict[str, Any]) -> list[str]:
    return [str(g.get("text") or "") for g in status.get("generations", []) if g.get("state", "ok") == "ok"]


async def complete(
    horde: Horde, body: CompletionRequest, *, user: Principal, client_agent: str, ipaddr: str,
    disconnected: Disconnected,
) -> Completion:  # fmt: skip
    """POST /v1/completions."""
    _refuse_unsupported(body)
    if body.echo or (body.best_of or 1) > 1 or body.logprobs is not None or body.suffix:
        raise OpenAIError("echo, best_of, logprobs and suffix are not supported by this horde")
    if not isinstance(body.prompt, str):
        if len(body.prompt) != 1:
            raise OpenAIError("send one prompt per request", param="prompt")
        body.prompt = body.prompt[0]
    stops = _stops(body.stop)
    await _served(horde, body.model)
    request = _text_request(body, body.prompt, max_tokens=body.max_tokens, stops=stops)
    status = await _run(
        horde, kind="text", body=request, user=user, client_agent=client_agent, ipaddr=ipaddr,
        disconnected=disconnected,
    )  # fmt: skip
    choices = []
    for index, text in enumerate(_texts(status)):
        cut, reason = _cut(text, stops)
        choices.append(CompletionChoice(index=index, text=cut, finish_reason=reason))
    return Completion(
        id=f"cmpl-{uuid.uuid4().hex}", created=int(time.time()), model=body.model, choices=choices
    )


def _turns(body: ChatCompletionRequest) -> list[Turn]:
    if body.tools or body.tool_choice or body.functions or body.function_call:
        raise OpenAIError("tool and function calls are not supported by this horde", param="tools")
    if body.logprobs or body.top_logprobs:
        raise OpenAIError("logprobs are not supported by this horde", param="logprobs")
    if body.response_format and body.response_format.get("type", "text") != "text":
        raise OpenAIError("only the text response format is supported", param="response_format")
    turns = []
    for i, message in enumerate(body.messages):
        role = "system" if message.role == "developer" else message.role
        if role not in ROLES:
            raise OpenAIError(
                f"messages[{i}].role must be system, user or assistant", param=f"messages[{i}].role"
            )
        turns.append(Turn(role, _content(message.content, i)))
    if not any(turn.role == "user" for turn in turns):
        raise OpenAIError("messages must hold at least one user message", param="messages")
    return turns


def _content(content: str | list[dict[str, Any]] | None, index: int) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise OpenAIError("only text content parts are supported", param=f"messages[{index}].content")
        parts.append(part["text"])
    return "".join(parts)


async def chat(
    horde: Horde, body: ChatCompletionRequest, *, user: Principal, client_agent: str, ipaddr: str,
    disconnected: Disconnected,
) -> ChatCompletion:  # fmt: skip
    """POST /v1/chat/completions: the messages rendered with the model family's chat template."""
    _refuse_unsupported(body)
    turns = _turns(body)
    await _served(horde, body.model)
    template = template_for(
        body.model, baseline=horde.catalog.text_baseline(body.model), configured=horde.settings.chat_templates
    )
    stops = _stops(body.stop, template.stop)
    max_tokens = body.max_completion_tokens or body.max_tokens
    request = _text_request(body, template.render(turns), max_tokens=max_tokens, stops=stops)
    status = await _run(
        horde, kind="text", body=request, user=user, client_agent=client_agent, ipaddr=ipaddr,
        disconnected=disconnected,
    )  # fmt: skip
    choices = []
    for index, text in enumerate(_texts(status)):
        cut, reason = _cut(text, stops)
        message = AssistantMessage(content=cut.strip())
        choices.append(ChatChoice(index=index, message=message, finish_reason=reason))
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=body.model, choices=choices
    )


def _size(size: str | None) -> tuple[int, int]:
    if size is None:
        return 512, 512
    width, _, height = size.partition("x")
    try:
        w, h = int(width), int(height)
    except ValueError:
        raise OpenAIError("size must be WIDTHxHEIGHT, e.g. 512x512", param="size") from None
    if w not in SIZES or h not in SIZES:
        raise OpenAIError("width and height must be multiples of 64 from 64 to 3072", param="size")
    return w, h


async def images(
    horde: Horde, body: ImageGenerationRequest, *, user: Principal, client_agent: str, ipaddr: str,
    disconnected: Disconnected,
) -> ImagesResponse:  # fmt: skip
    """POST /v1/images/generations: `url` answers the stored image's signed URL, `b64_json` its bytes
    (WebP, as the horde stores images)."""
    width, height = _size(body.size)
    request = GenerationInputStable.model_validate({
        "prompt": body.prompt, "params": {"width": width, "height": height, "n": body.n},
        "models": [body.model] if body.model else [], "r2": body.response_format == "url",
    })  # fmt: skip
    status = await _run(
        horde, kind="image", body=request, user=user, client_agent=client_agent, ipaddr=ipaddr,
        disconnected=disconnected,
    )  # fmt: skip
    data = []
    for generation in status.get("generations", []):
        if generation.get("censored") or not generation.get("img"):
            continue
        image = str(generation["img"])
        data.append(ImageData(url=image) if body.response_format == "url" else ImageData(b64_json=image))
    return ImagesResponse(created=int(time.time()), data=data)
