"""A popped image job's ``payload`` read into what a Stable Diffusion pipeline needs, with notes.

Pure: no torch. The horde's payload is the request's ``params`` with ``steps`` renamed ``ddim_steps``
plus ``prompt`` (``positive###negative``), ``seed`` (int) and ``n_iter``. Features this backend does not
implement either fail the job (:class:`UnsupportedJob`: ControlNet, inpainting, LoRAs and textual
inversions, which the worker does not pop unless it allows them) or are noted as dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from horde.worker.backends.base import ParamNote, UnsupportedJob
from horde.worker.backends.image.samplers import SamplerChoice, choose_sampler

__all__ = ["ImageRequest", "read_payload"]

# Payload fields with no effect here; noted when the request turned them on.
_DROPPED = {
    "hires_fix": "no high-resolution second pass",
    "tiling": "no seamless tiling",
    "post_processing": "post-processors run as alchemy forms, not inside this backend",
    "facefixer_strength": "no face fixer",
    "transparent": "no transparent-background generation",
}


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """Everything the pipeline call needs for one job."""

    prompt: str
    negative_prompt: str
    seeds: tuple[int, ...]
    steps: int
    cfg_scale: float
    width: int
    height: int
    sampler: str
    scheduler: SamplerChoice
    karras: bool
    clip_skip: int
    denoising_strength: float
    notes: tuple[ParamNote, ...]


def _unsupported(payload: dict[str, Any], source_processing: str | None) -> str | None:
    if payload.get("control_type"):
        return "ControlNet"
    if source_processing in ("inpainting", "outpainting", "remix"):
        return source_processing
    if payload.get("loras") or payload.get("tis"):
        return "LoRAs and textual inversions"
    return None


def _notes(payload: dict[str, Any], sampler: str, choice: SamplerChoice) -> list[ParamNote]:
    notes = [ParamNote(f, "dropped", why) for f, why in _DROPPED.items() if payload.get(f)]
    asked = payload.get("sampler_name")
    if asked and asked != sampler:
        notes.append(ParamNote("sampler_name", "approximated", f"unknown sampler {asked!r}: {sampler}"))
    elif choice.approximation:
        notes.append(ParamNote("sampler_name", "approximated", choice.approximation))
    return notes


def read_payload(payload: dict[str, Any], *, source_processing: str | None = None) -> ImageRequest:
    """Read ``payload``; raise :class:`UnsupportedJob` for features this backend lacks."""
    if (missing := _unsupported(payload, source_processing)) is not None:
        raise UnsupportedJob(f"the diffusers backend does not do {missing}")
    positive, _, negative = str(payload.get("prompt", "")).partition("###")
    seed = payload.get("seed")
    first = int(seed) if isinstance(seed, int | str) and str(seed).isdigit() else random.randrange(2**32)
    count = max(1, int(payload.get("n_iter") or 1))
    sampler, choice = choose_sampler(payload.get("sampler_name"))
    return ImageRequest(
        prompt=positive.strip(),
        negative_prompt=negative.strip(),
        seeds=tuple((first + i) % 2**32 for i in range(count)),
        steps=max(1, int(payload.get("ddim_steps") or payload.get("steps") or 30)),
        cfg_scale=float(payload.get("cfg_scale") or 5.0),
        width=int(payload.get("width") or 512),
        height=int(payload.get("height") or 512),
        sampler=sampler,
        scheduler=choice,
        karras=bool(payload.get("karras", True)),
        # The horde counts CLIP layers from 1 (no skip); diffusers counts the layers skipped.
        clip_skip=max(0, int(payload.get("clip_skip") or 1) - 1),
        denoising_strength=float(payload.get("denoising_strength") or 0.75),
        notes=tuple(_notes(payload, sampler, choice)),
    )
