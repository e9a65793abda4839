"""Image backend: a Stable Diffusion 1.5 or SDXL checkpoint run with diffusers (the ``image`` extra).

The operator points ``checkpoint`` at a diffusers folder (``model_index.json``) or a single
``.safetensors``/``.ckpt`` file. Nothing is downloaded: loading uses ``local_files_only``, so a single
file needs its pipeline configs either in the Hugging Face cache or in a local diffusers folder given
as ``config``. Honoured per job: prompt and negative prompt (``###``), seed (image *i* of a batch gets
seed + *i*), steps, sampler (:mod:`.samplers`), karras, cfg, size, clip_skip, img2img with
``denoising_strength``, and ``n_iter``. Cancelling interrupts the pipeline at its next step.
"""

from __future__ import annotations

import importlib
import inspect
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from horde.worker.backends.base import (
    BackendUnavailable,
    BlockingRunner,
    GeneratedImage,
    JobFailed,
)
from horde.worker.backends.image.request import ImageRequest, read_payload

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["DiffusersBackend", "detect_kind"]

Kind = Literal["auto", "sd15", "sdxl"]


def detect_kind(checkpoint: Path) -> Literal["sd15", "sdxl"]:
    """SDXL when a single file holds the second text encoder (``conditioner.embedders.1``)."""
    if checkpoint.suffix != ".safetensors":
        return "sd15"
    safetensors = importlib.import_module("safetensors")
    with safetensors.safe_open(str(checkpoint), framework="pt") as f:
        names: list[str] = list(f.keys())  # a safe_open handle is not a mapping
    return "sdxl" if any(k.startswith("conditioner.embedders.1") for k in names) else "sd15"


class DiffusersBackend:
    """Generates images with one Stable Diffusion pipeline held in this process."""

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        models: Sequence[str] = (),
        kind: Kind = "auto",
        config: str | None = None,
        device: str | None = None,
        threads: int | None = None,
        name: str = "diffusers",
    ) -> None:
        self.name = name
        self.checkpoint = Path(checkpoint)
        self._models = tuple(models) or (self.checkpoint.stem,)
        self._kind = kind
        self._config = config
        self._device = device
        self._threads = threads
        self._pipe: Any = None
        self._img2img: Any = None
        self._scheduler_config: Any = None
        self._runner = BlockingRunner(name)

    @property
    def models(self) -> Sequence[str]:
        return self._models

    async def load(self) -> None:
        await self._runner.run(self._load)

    def _load(self, _cancel: threading.Event) -> None:
        try:
            import diffusers
            import torch
        except ImportError as exc:
            raise BackendUnavailable(
                self.name, f"install the image extra (uv sync --extra image): {exc}"
            ) from exc
        if not self.checkpoint.exists():
            raise BackendUnavailable(self.name, f"checkpoint {self.checkpoint} does not exist")
        if self._threads:
            torch.set_num_threads(self._threads)
        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        try:
            pipe = self._open(diffusers, dtype)
            self._pipe = pipe.to(device)
        except Exception as exc:  # diffusers raises many kinds (OSError, ValueError, EnvironmentError...)
            raise BackendUnavailable(self.name, f"cannot load {self.checkpoint}: {exc}") from exc
        self._pipe.set_progress_bar_config(disable=True)
        self._scheduler_config = self._pipe.scheduler.config

    def _open(self, diffusers: Any, dtype: Any) -> Any:
        if self.checkpoint.is_dir():
            index = json.loads((self.checkpoint / "model_index.json").read_text())
            extra: dict[str, Any] = {}
            if "safety_checker" in index:  # the worker censors with the nsfw backend instead
                extra = {"safety_checker": None, "requires_safety_checker": False}
            return diffusers.AutoPipelineForText2Image.from_pretrained(
                self.checkpoint, torch_dtype=dtype, local_files_only=True, **extra
            )
        kind = detect_kind(self.checkpoint) if self._kind == "auto" else self._kind
        cls = diffusers.StableDiffusionXLPipeline if kind == "sdxl" else diffusers.StableDiffusionPipeline
        return cls.from_single_file(
            str(self.checkpoint), torch_dtype=dtype, config=self._config, local_files_only=True
        )

    async def generate(
        self, payload: dict[str, Any], *, source_image: Image | None = None
    ) -> list[GeneratedImage]:
        if self._pipe is None:
            raise JobFailed(f"{self.name} is not loaded")
        processing = payload.get("source_processing") if source_image is not None else None
        request = read_payload(payload, source_processing=processing)
        images: list[Image] = await self._runner.run(self._generate, request, source_image)
        return [
            GeneratedImage(image=img, seed=seed, notes=request.notes)
            for img, seed in zip(images, request.seeds, strict=True)
        ]

    def _scheduler(self, request: ImageRequest) -> Any:
        import diffusers

        cls = getattr(diffusers, request.scheduler.scheduler)
        options = dict(request.scheduler.config)
        if request.karras and "use_karras_sigmas" in inspect.signature(cls.__init__).parameters:
            options["use_karras_sigmas"] = True
        return cls.from_config(self._scheduler_config, **options)

    def _generate(self, cancel: threading.Event, request: ImageRequest, source: Image | None) -> list[Image]:
        import diffusers
        import torch

        def on_step_end(pipe: Any, _step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if cancel.is_set():
                pipe._interrupt = True  # diffusers' documented way to stop a running pipeline
            return tensors

        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "num_inference_steps": request.steps,
            "guidance_scale": request.cfg_scale,
            "num_images_per_prompt": len(request.seeds),
            "generator": [torch.Generator("cpu").manual_seed(s) for s in request.seeds],
            "callback_on_step_end": on_step_end,
            "output_type": "pil",
        }
        if request.clip_skip:
            kwargs["clip_skip"] = request.clip_skip
        if source is None:
            pipe = self._pipe
            kwargs.update(width=request.width, height=request.height)
        else:
            if self._img2img is None:
                self._img2img = diffusers.AutoPipelineForImage2Image.from_pipe(self._pipe)
            pipe = self._img2img
            size = (request.width, request.height)
            kwargs.update(image=source.convert("RGB").resize(size), strength=request.denoising_strength)
        pipe.scheduler = self._scheduler(request)
        try:
            with torch.inference_mode():
                out = pipe(**kwargs)
        except (RuntimeError, ValueError) as exc:
            raise JobFailed(f"{self.name}: {exc}") from exc
        images: list[Image] = list(out.images)
        return images

    async def close(self) -> None:
        await self._runner.aclose()
        self._pipe = self._img2img = None
