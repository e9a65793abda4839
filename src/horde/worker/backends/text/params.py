"""KoboldAI-style text parameters of an AI Horde text job, and the output formatting flags.

:class:`TextParams` carries the ``payload`` of a popped text job (the request's ``params`` plus ``n``);
a field left ``None`` was not sent, so the backend uses its own default and notes nothing.
:func:`format_output` applies the ``singleline`` and ``frmt*`` output flags the same way for every
backend, after generation (applying them twice changes nothing).
"""

from __future__ import annotations

import random
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["KOBOLD_DEFAULT_SAMPLER_ORDER", "TextParams", "format_output", "resolve_seed"]

# KoboldAI's sampler ids: 0 top_k, 1 top_a, 2 top_p, 3 tfs, 4 typical, 5 temperature, 6 rep_pen.
KOBOLD_DEFAULT_SAMPLER_ORDER = (6, 0, 1, 3, 4, 2, 5)

_SPECIAL_CHARS = re.compile(r"[#/@%<>{}+=~|\\^]")
_BLANK_LINES = re.compile(r"\n{2,}")


class TextParams(BaseModel):
    """The sampler and formatting fields of an AI Horde text payload (``ModelPayloadKobold``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    max_length: int = Field(default=80, ge=1, le=4096)
    max_context_length: int = Field(default=2048, ge=1)
    n: int = Field(default=1, ge=1)
    seed: int | None = None
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    top_a: float | None = Field(default=None, ge=0, le=1)
    typical: float | None = Field(default=None, ge=0, le=1)
    tfs: float | None = Field(default=None, ge=0, le=1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    rep_pen: float | None = Field(default=None, ge=0)
    rep_pen_range: int | None = Field(default=None, ge=0)
    rep_pen_slope: float | None = Field(default=None, ge=0)
    sampler_order: list[int] | None = None
    stop_sequence: list[str] | None = None
    use_default_badwordsids: bool | None = None
    smoothing_factor: float | None = Field(default=None, ge=0)
    dynatemp_range: float | None = Field(default=None, ge=0)
    dynatemp_exponent: float | None = Field(default=None, ge=0)
    singleline: bool = False
    frmtadsnsp: bool = False
    frmtrmblln: bool = False
    frmtrmspch: bool = False
    frmttriminc: bool = False

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> TextParams:
        """Read a popped text job's ``payload`` (extra keys such as ``prompt`` are ignored)."""
        return cls.model_validate(payload)

    def stops(self) -> list[str]:
        """Stop strings to hand the engine: ``stop_sequence`` plus a newline for ``singleline``."""
        stops = [s for s in (self.stop_sequence or []) if s]
        if self.singleline and "\n" not in stops:
            stops.append("\n")
        return stops

    def is_set(self, name: str) -> bool:
        """Whether the request set ``name`` to something other than its neutral (no-op) value."""
        value = getattr(self, name)
        neutral: dict[str, object] = {
            "top_a": 0.0,
            "tfs": 1.0,
            "typical": 1.0,
            "min_p": 0.0,
            "rep_pen": 1.0,
            "top_k": 0,
            "top_p": 1.0,
            "smoothing_factor": 0.0,
            "dynatemp_range": 0.0,
            "rep_pen_slope": 0.0,
        }
        if value is None or value is False:
            return False
        if name == "sampler_order":
            return tuple(value) != KOBOLD_DEFAULT_SAMPLER_ORDER
        return name not in neutral or value != neutral[name]


def resolve_seed(seed: int | None) -> int:
    """The request's seed, or a fresh random one, so the seed reported is the seed used."""
    return seed if seed is not None else random.randrange(2**31)


def _trim_incomplete(text: str) -> str:
    # Keep up to the last sentence end (and a closing quote right after it); no sentence end: keep all.
    end = max(text.rfind("."), text.rfind("!"), text.rfind("?"))
    if end < 0:
        return text
    if end + 1 < len(text) and text[end + 1] == '"':
        end += 1
    return text[: end + 1]


def format_output(text: str, params: TextParams) -> str:
    """Apply ``singleline``, ``frmtrmblln``, ``frmtrmspch`` and ``frmttriminc`` to generated text."""
    if params.singleline:
        text = text.lstrip("\n").split("\n", 1)[0]
    if params.frmtrmblln:
        text = _BLANK_LINES.sub("\n", text)
    if params.frmtrmspch:
        text = _SPECIAL_CHARS.sub("", text)
    if params.frmttriminc:
        text = _trim_incomplete(text)
    return text
