"""Alchemy backends: ``nsfw`` (open_nsfw), RealESRGAN upscalers (ncnn), ``strip_background`` (ISNet)."""

from horde.worker.backends.alchemy.fetch import FetchError, fetch_isnet, fetch_models, isnet_path
from horde.worker.backends.alchemy.nsfw import NsfwBackend
from horde.worker.backends.alchemy.strip_background import StripBackgroundBackend
from horde.worker.backends.alchemy.upscale import UPSCALERS, UpscaleBackend

__all__ = [
    "UPSCALERS",
    "FetchError",
    "NsfwBackend",
    "StripBackgroundBackend",
    "UpscaleBackend",
    "fetch_isnet",
    "fetch_models",
    "isnet_path",
]
