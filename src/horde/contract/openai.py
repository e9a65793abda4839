"""OpenAI-compatible bodies under `/v1` (an extension: the reference has no such API).

Only what the horde can honour is accepted. A field the horde cannot honour is refused when it asks
for something (tools, logprobs, echo, best_of above 1, a non-zero penalty, a logit bias, a JSON
response format); fields that change nothing (`user`, `stream_options` without `stream`) are ignored.
Shapes follow OpenAI's API reference as the official `openai` package parses them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from horde.contract import limits

MAX_CHOICES = limits.MAX_N


class OpenAIModel(BaseModel):
    model_config = ConfigDict(extra="allow")  # clients send fields of newer API versions


class SamplingInput(OpenAIModel):
    """What completions and chat completions share."""

    model: str = Field(min_length=1, max_length=255)
    max_tokens: int | None = Field(default=None, ge=limits.MIN_TEXT_LENGTH, le=limits.MAX_TEXT_LENGTH)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    seed: int | None = None
    stream: bool = False
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None


class CompletionRequest(SamplingInput):
    prompt: str | list[str]
    echo: bool = False
    best_of: int | None = None
    logprobs: int | None = None
    suffix: str | None = None


class ChatMessage(OpenAIModel):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class ChatCompletionRequest(SamplingInput):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(
        default=None, ge=limits.MIN_TEXT_LENGTH, le=limits.MAX_TEXT_LENGTH
    )
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    functions: list[dict[str, Any]] | None = None
    function_call: Any = None
    response_format: dict[str, Any] | None = None


class ImageGenerationRequest(OpenAIModel):
    prompt: str = Field(min_length=1)
    model: str | None = None
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    size: str | None = None  # "WxH"
    response_format: Literal["url", "b64_json"] = "url"
    quality: str | None = None
    style: str | None = None
    user: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "horde"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: Literal["stop", "length"]


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: None = None
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]


class ImageData(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
