"""Image backends: Stable Diffusion through diffusers (needs the ``image`` extra: torch, diffusers)."""

from horde.worker.backends.image.request import ImageRequest, read_payload
from horde.worker.backends.image.samplers import SAMPLERS, choose_sampler
from horde.worker.backends.image.stable_diffusion import DiffusersBackend

__all__ = ["SAMPLERS", "DiffusersBackend", "ImageRequest", "choose_sampler", "read_payload"]
