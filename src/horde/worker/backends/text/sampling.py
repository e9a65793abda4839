"""How each KoboldAI sampler field of a horde text job becomes llama.cpp ``create_completion`` arguments.

:func:`llama_arguments` is pure: it returns the keyword arguments, the settings applied around the call
(repetition range, top-a, EOS ban) and a :class:`ParamNote` for every field that llama.cpp cannot honour
exactly. Fields the request leaves out take KoboldCpp-like defaults (:data:`DEFAULTS`), so the same
request reads the same on every backend. The table in ``docs/worker-backends.md`` mirrors this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from horde.worker.backends.base import ParamNote
from horde.worker.backends.text.params import KOBOLD_DEFAULT_SAMPLER_ORDER, TextParams

__all__ = ["DEFAULTS", "LlamaCall", "llama_arguments", "top_a_filter"]

# Used when the request leaves a sampler out (values as KoboldCpp's API defaults them).
DEFAULTS: dict[str, float | int] = {
    "temperature": 0.75,
    "top_p": 0.92,
    "top_k": 100,
    "min_p": 0.0,
    "typical": 1.0,
    "rep_pen": 1.1,
    "rep_pen_range": 256,
}

_DROPPED = {
    "tfs": "llama.cpp removed tail-free sampling",
    "smoothing_factor": "not exposed by llama-cpp-python",
    "dynatemp_range": "not exposed by llama-cpp-python",
    "dynatemp_exponent": "not exposed by llama-cpp-python",
    "frmtadsnsp": "input formatting of a KoboldAI story action",
}


@dataclass(frozen=True, slots=True)
class LlamaCall:
    """Everything one generation needs besides the prompt."""

    kwargs: dict[str, Any]
    repeat_last_n: int
    prompt_budget: int
    top_a: float = 0.0
    ban_eos: bool = False
    notes: tuple[ParamNote, ...] = field(default=())


def _value(params: TextParams, name: str) -> Any:
    value = getattr(params, name)
    return DEFAULTS[name] if value is None else value


def _notes(params: TextParams, n_ctx: int) -> list[ParamNote]:
    notes = [ParamNote(f, "dropped", why) for f, why in _DROPPED.items() if params.is_set(f)]
    if params.is_set("top_a"):
        notes.append(ParamNote("top_a", "approximated", "applied to raw logits, before the other samplers"))
    if params.is_set("rep_pen_slope") and params.rep_pen_slope != 1.0 and params.is_set("rep_pen"):
        notes.append(ParamNote("rep_pen_slope", "approximated", "the penalty is flat over the range"))
    order = params.sampler_order
    if order is not None and tuple(order) != KOBOLD_DEFAULT_SAMPLER_ORDER:
        notes.append(ParamNote("sampler_order", "dropped", "llama.cpp applies a fixed order"))
    if params.max_context_length > n_ctx:
        notes.append(ParamNote("max_context_length", "approximated", f"capped at the loaded n_ctx {n_ctx}"))
    return notes


def llama_arguments(params: TextParams, *, n_ctx: int, seed: int) -> LlamaCall:
    """Map ``params`` onto ``Llama.create_completion`` keyword arguments for a model with ``n_ctx``."""
    context = min(params.max_context_length, n_ctx)
    max_tokens = min(params.max_length, context - 1)
    rep_range = int(_value(params, "rep_pen_range"))
    kwargs: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": float(_value(params, "temperature")),
        "top_p": float(_value(params, "top_p")),
        # KoboldAI's top_k 0 means "off"; llama.cpp's top_k <= 0 means the whole vocabulary too.
        "top_k": int(_value(params, "top_k")),
        "min_p": float(_value(params, "min_p")),
        "typical_p": float(_value(params, "typical")),
        "repeat_penalty": float(_value(params, "rep_pen")),
        "seed": seed,
    }
    return LlamaCall(
        kwargs=kwargs,
        # KoboldAI's range 0 means the whole context; llama.cpp's 0 would disable the penalty.
        repeat_last_n=rep_range if rep_range > 0 else context,
        prompt_budget=max(1, context - max_tokens),
        top_a=params.top_a or 0.0,
        ban_eos=bool(params.use_default_badwordsids),
        notes=tuple(_notes(params, n_ctx)),
    )


def top_a_filter(logits: Any, top_a: float) -> Any:
    """Top-a: keep tokens whose probability is at least ``top_a * p_max**2`` (numpy array in/out)."""
    import numpy as np

    shifted = logits - np.max(logits)
    probs = np.exp(shifted)
    probs /= probs.sum()
    limit = top_a * float(np.max(probs)) ** 2
    return np.where(probs < limit, -np.inf, logits)
