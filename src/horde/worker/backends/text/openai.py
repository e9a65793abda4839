"""Text backend for an OpenAI-compatible completions server (``POST {base}/v1/completions``).

Served by llama.cpp's server, vLLM, Ollama and TabbyAPI. The standard fields (``max_tokens``,
``temperature``, ``top_p``, ``stop``, ``seed``) are understood by all of them; ``top_k``, ``min_p``,
``typical_p``, ``repetition_penalty``/``repeat_penalty``, ``repeat_last_n`` and ``ignore_eos`` are
common extensions that servers without them ignore. The KoboldAI-only samplers are dropped and
reported in the result's notes. The horde keeps a matched stop sequence in the text; servers strip it,
so it is put back when the server says which one matched (vLLM's ``stop_reason``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from horde.worker.backends.base import BackendUnavailable, BadBackendResponse, ParamNote, TextResult
from horde.worker.backends.text.http import RemoteServer
from horde.worker.backends.text.params import TextParams, format_output, resolve_seed

__all__ = ["OpenAIBackend", "openai_body"]

# Horde field -> the request fields carrying it (several servers name the same thing differently).
_MAPPED: dict[str, tuple[str, ...]] = {
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "top_k": ("top_k",),
    "min_p": ("min_p",),
    "typical": ("typical_p",),
    "rep_pen": ("repetition_penalty", "repeat_penalty"),
    "rep_pen_range": ("repeat_last_n",),
    "use_default_badwordsids": ("ignore_eos",),
}
_DROPPED: dict[str, str] = {
    "top_a": "no OpenAI-compatible field",
    "tfs": "no OpenAI-compatible field",
    "rep_pen_slope": "no OpenAI-compatible field",
    "sampler_order": "the server applies its own order",
    "smoothing_factor": "no OpenAI-compatible field",
    "dynatemp_range": "no OpenAI-compatible field",
    "dynatemp_exponent": "no OpenAI-compatible field",
    "frmtadsnsp": "input formatting of a KoboldAI story action",
}


def openai_body(
    prompt: str, params: TextParams, seed: int, model: str
) -> tuple[dict[str, Any], tuple[ParamNote, ...]]:
    """The ``/v1/completions`` body for one generation and the notes on fields it could not carry."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": params.max_length,
        "n": 1,
        "seed": seed,
        "stream": False,
    }
    for field, names in _MAPPED.items():
        value = getattr(params, field)
        if value is not None:
            body.update(dict.fromkeys(names, value))
    if stops := params.stops():
        body["stop"] = stops
        # The horde returns the stop sequence with the text; vLLM keeps it when asked (others strip it).
        body["include_stop_str_in_output"] = True
    notes = [ParamNote(f, "dropped", why) for f, why in _DROPPED.items() if params.is_set(f)]
    if params.max_context_length != TextParams.model_fields["max_context_length"].default:
        notes.append(ParamNote("max_context_length", "dropped", "the server applies its own context limit"))
    return body, tuple(notes)


class OpenAIBackend:
    """Generates text by calling an OpenAI-compatible ``/v1/completions`` endpoint."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        models: Sequence[str] = (),
        api_key: str | None = None,
        name: str = "openai",
        timeout: float = 300.0,
        connect_timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._model = model
        self._models = tuple(models)
        self._server = RemoteServer(
            name,
            base_url,
            api_key=api_key,
            timeout=timeout,
            connect_timeout=connect_timeout,
            transport=transport,
        )

    @property
    def models(self) -> Sequence[str]:
        return self._models

    async def load(self) -> None:
        """List the server's models; pick the first unless one was configured, and check it exists."""
        answer = await self._server.probe("/v1/models")
        data = answer.get("data") if isinstance(answer, dict) else None
        ids = [m["id"] for m in data or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]
        if self._model is None:
            if not ids:
                raise BackendUnavailable(self.name, f"{self._server.base_url} lists no models")
            self._model = ids[0]
        elif ids and self._model not in ids:
            raise BackendUnavailable(
                self.name, f"model {self._model!r} is not served by {self._server.base_url} (it has {ids})"
            )
        if not self._models:
            self._models = (self._model,)

    async def generate(self, prompt: str, params: TextParams) -> TextResult:
        seed = resolve_seed(params.seed)
        body, notes = openai_body(prompt, params, seed, self._model or "")
        answer = await self._server.request("POST", "/v1/completions", body)
        try:
            choice = answer["choices"][0]
            text = choice["text"]
        except (KeyError, IndexError, TypeError) as exc:
            raise BadBackendResponse(f"{self.name}: no choices[0].text in {str(answer)[:200]}") from exc
        if not isinstance(text, str):
            raise BadBackendResponse(f"{self.name}: choices[0].text is not a string")
        matched = choice.get("stop_reason")
        if isinstance(matched, str) and matched in params.stops() and not text.endswith(matched):
            text += matched
        usage = answer.get("usage") if isinstance(answer, dict) else None
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        return TextResult(
            text=format_output(text, params),
            seed=seed,
            notes=notes,
            tokens=tokens if isinstance(tokens, int) else None,
        )

    async def close(self) -> None:
        await self._server.aclose()
