"""The horde's sampler names (k-diffusion's ``k_*`` plus a few) mapped to diffusers schedulers.

Each entry names a diffusers scheduler class and the config it gets. Where diffusers has no scheduler
with the same maths the closest one is used and the mapping says ``approximated`` (it goes into the
job's notes). ``karras`` (the horde's default is on) switches to Karras sigmas where the scheduler has
them. Pure data and one function: nothing here imports torch or diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SAMPLERS", "SamplerChoice", "choose_sampler"]


@dataclass(frozen=True, slots=True)
class SamplerChoice:
    """A diffusers scheduler class name, extra config, and why it is only an approximation (if so)."""

    scheduler: str
    config: dict[str, Any] = field(default_factory=dict)
    approximation: str = ""


_DPMPP = {"algorithm_type": "dpmsolver++", "solver_order": 2}

SAMPLERS: dict[str, SamplerChoice] = {
    "k_lms": SamplerChoice("LMSDiscreteScheduler"),
    "k_heun": SamplerChoice("HeunDiscreteScheduler"),
    "k_euler": SamplerChoice("EulerDiscreteScheduler"),
    "k_euler_a": SamplerChoice("EulerAncestralDiscreteScheduler"),
    "k_dpm_2": SamplerChoice("KDPM2DiscreteScheduler"),
    "k_dpm_2_a": SamplerChoice("KDPM2AncestralDiscreteScheduler"),
    "k_dpmpp_2m": SamplerChoice("DPMSolverMultistepScheduler", _DPMPP),
    "k_dpmpp_2s_a": SamplerChoice(
        "DPMSolverSinglestepScheduler", _DPMPP, "DPM++ 2S without the ancestral noise"
    ),
    "k_dpmpp_sde": SamplerChoice(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2},
        "SDE-DPM++ 2M in place of DPM++ SDE",
    ),
    "k_dpm_fast": SamplerChoice(
        "DPMSolverSinglestepScheduler", {"algorithm_type": "dpmsolver", "solver_order": 3}, "DPM-Solver-3S"
    ),
    "k_dpm_adaptive": SamplerChoice(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver", "solver_order": 2},
        "fixed steps, no adaptive step size",
    ),
    "dpmsolver": SamplerChoice("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver"}),
    "DDIM": SamplerChoice("DDIMScheduler"),
    "lcm": SamplerChoice("LCMScheduler"),
}
DEFAULT_SAMPLER = "k_euler_a"


def choose_sampler(name: str | None) -> tuple[str, SamplerChoice]:
    """The horde sampler name to use (unknown names fall back to k_euler_a) and its scheduler."""
    key = name if name in SAMPLERS else DEFAULT_SAMPLER
    return key, SAMPLERS[key]
