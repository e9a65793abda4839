"""Text backend for a KoboldAI-compatible server (``POST {base}/api/v1/generate``, e.g. KoboldCpp).

The KoboldAI API is the one the AI Horde text payload was modelled on, so every sampler field is passed
through under its own name; only the seed is renamed (``sampler_seed``). Output flags are applied here
as well (idempotent), so a server that ignores them still gives the requested shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from horde.worker.backends.base import BackendUnavailable, BadBackendResponse, ParamNote, TextResult
from horde.worker.backends.text.http import RemoteServer
from horde.worker.backends.text.params import TextParams, format_output, resolve_seed

__all__ = ["KoboldBackend", "kobold_body"]

_PASSED = (
    "max_length",
    "max_context_length",
    "temperature",
    "top_p",
    "top_k",
    "top_a",
    "typical",
    "tfs",
    "min_p",
    "rep_pen",
    "rep_pen_range",
    "rep_pen_slope",
    "sampler_order",
    "stop_sequence",
    "use_default_badwordsids",
    "smoothing_factor",
    "dynatemp_range",
    "dynatemp_exponent",
    "singleline",
    "frmtadsnsp",
    "frmtrmblln",
    "frmtrmspch",
    "frmttriminc",
)


def kobold_body(prompt: str, params: TextParams, seed: int) -> dict[str, Any]:
    """The ``/api/v1/generate`` body for one generation: the horde fields as KoboldAI names them."""
    body: dict[str, Any] = {"prompt": prompt, "n": 1, "sampler_seed": seed}
    for name in _PASSED:
        value = getattr(params, name)
        if value is not None:
            body[name] = value
    return body


class KoboldBackend:
    """Generates text by calling a KoboldAI-compatible HTTP server."""

    def __init__(
        self,
        base_url: str,
        *,
        models: Sequence[str] = (),
        name: str = "kobold",
        timeout: float = 300.0,
        connect_timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._models = tuple(models)
        self._server = RemoteServer(
            name, base_url, timeout=timeout, connect_timeout=connect_timeout, transport=transport
        )

    @property
    def models(self) -> Sequence[str]:
        return self._models

    async def load(self) -> None:
        """Ask the server which model it runs; advertise that name unless names were configured."""
        answer = await self._server.probe("/api/v1/model")
        served = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(served, str) or not served or served == "ReadOnly":
            raise BackendUnavailable(self.name, f"{self._server.base_url} has no model loaded ({answer!r})")
        if not self._models:
            self._models = (served,)

    async def generate(self, prompt: str, params: TextParams) -> TextResult:
        seed = resolve_seed(params.seed)
        answer = await self._server.request("POST", "/api/v1/generate", kobold_body(prompt, params, seed))
        try:
            text = answer["results"][0]["text"]
        except (KeyError, IndexError, TypeError) as exc:
            raise BadBackendResponse(f"{self.name}: no results[0].text in {str(answer)[:200]}") from exc
        if not isinstance(text, str):
            raise BadBackendResponse(f"{self.name}: results[0].text is not a string")
        notes: tuple[ParamNote, ...] = ()
        return TextResult(text=format_output(text, params), seed=seed, notes=notes)

    async def close(self) -> None:
        await self._server.aclose()
