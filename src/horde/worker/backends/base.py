"""The one small interface between the worker loop and the model backends.

A backend is an object with a ``name``, the horde model names (text, image) or alchemy form names it
serves, an ``async load()`` that either succeeds or raises :class:`BackendUnavailable` with a reason a
person can act on, and an ``async close()``. Text backends add ``generate(prompt, params)``, image
backends ``generate(payload)``, alchemy backends ``run(form, image, payload)``.

Exceptions (all subclasses of :class:`BackendError`)::

    BackendError               anything a backend raises on purpose
    ├── BackendUnavailable     load() failed: missing package, weights or server; do not advertise
    └── JobFailed              one job could not be done: submit it as faulted
        ├── UnsupportedJob     the job asks for something this backend cannot do (a form, img2img, ...)
        ├── BackendUnreachable the HTTP backend refused the connection or is down
        ├── BackendTimeout     the HTTP backend did not answer in time (it hangs)
        └── BadBackendResponse the HTTP backend answered with an error status or an unreadable body

Blocking work (model calls) runs on one thread per backend (:class:`BlockingRunner`), never on the
event loop. Cancelling the awaiting task returns at once; a model call that is already running is asked
to stop through a :class:`threading.Event` where the engine allows it (llama.cpp does, between tokens).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL.Image import Image

    from horde.worker.backends.text.params import TextParams

__all__ = [
    "AlchemyBackend",
    "AlchemyResult",
    "Backend",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "BackendUnreachable",
    "BadBackendResponse",
    "BlockingRunner",
    "GeneratedImage",
    "ImageBackend",
    "JobFailed",
    "ParamNote",
    "TextBackend",
    "TextResult",
    "UnsupportedJob",
    "load_backends",
    "notes_metadata",
]


class BackendError(Exception):
    """Base of every error a backend raises on purpose."""


class BackendUnavailable(BackendError):
    """The backend cannot load; ``reason`` says why and what to do about it."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend}: {reason}")
        self.backend = backend
        self.reason = reason


class JobFailed(BackendError):
    """One job failed; the worker submits it with ``state: faulted``."""


class UnsupportedJob(JobFailed):
    """The job asks for a feature this backend does not have."""


class BackendUnreachable(JobFailed):
    """The remote inference server refused the connection or is down."""


class BackendTimeout(JobFailed):
    """The remote inference server did not answer within the configured timeout."""


class BadBackendResponse(JobFailed):
    """The remote inference server answered with an error status or an unreadable body."""


@dataclass(frozen=True, slots=True)
class ParamNote:
    """A request field a backend could not honour exactly."""

    field: str
    how: Literal["dropped", "approximated"]
    detail: str = ""


def notes_metadata(notes: Sequence[ParamNote]) -> list[dict[str, str]]:
    """Notes as AI Horde ``gen_metadata``: one ``information``/``see_ref`` item naming the fields."""
    parts = []
    for how in ("dropped", "approximated"):
        names = sorted({n.field for n in notes if n.how == how})
        if names:
            parts.append(f"{how}: {', '.join(names)}")
    return [{"type": "information", "value": "see_ref", "ref": "; ".join(parts)[:255]}] if parts else []


@dataclass(frozen=True, slots=True)
class TextResult:
    """One text generation, with the seed used and the fields not honoured exactly."""

    text: str
    seed: int
    notes: tuple[ParamNote, ...] = ()
    tokens: int | None = None

    def gen_metadata(self) -> list[dict[str, str]]:
        """The notes as AI Horde ``gen_metadata`` entries."""
        return notes_metadata(self.notes)


@dataclass(frozen=True, slots=True)
class AlchemyResult:
    """A form's outcome: a result dict (``{"nsfw": true}``) or an image for post-processor forms."""

    form: str
    result: dict[str, Any] = field(default_factory=dict)
    image: Image | None = None

    def submit_result(self, *, uploaded: bool = True) -> dict[str, Any]:
        """The ``result`` to submit: post-processor forms report ``{form: "R2"}`` once uploaded."""
        if self.image is not None and uploaded:
            return {self.form: "R2"}
        return dict(self.result)


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One generated image with the seed that produced it."""

    image: Image
    seed: int
    notes: tuple[ParamNote, ...] = ()

    def gen_metadata(self) -> list[dict[str, str]]:
        """The notes as AI Horde ``gen_metadata`` entries."""
        return notes_metadata(self.notes)


@runtime_checkable
class Backend(Protocol):
    """What every backend offers the worker."""

    name: str

    async def load(self) -> None:
        """Make the backend ready; raise :class:`BackendUnavailable` with a reason if it cannot be."""

    async def close(self) -> None:
        """Release models, threads and connections."""


@runtime_checkable
class TextBackend(Backend, Protocol):
    """A text generation backend serving some horde text model names."""

    @property
    def models(self) -> Sequence[str]:
        """Horde model names this backend answers for."""

    async def generate(self, prompt: str, params: TextParams) -> TextResult:
        """Continue ``prompt``; raise :class:`JobFailed` (or a subclass) when it cannot."""


@runtime_checkable
class AlchemyBackend(Backend, Protocol):
    """An alchemy (interrogation / post-processing) backend serving some form names."""

    @property
    def forms(self) -> Sequence[str]:
        """AI Horde form names this backend serves."""

    async def run(self, form: str, image: Image, payload: dict[str, Any]) -> AlchemyResult:
        """Run ``form`` on ``image``; raise :class:`JobFailed` (or a subclass) when it cannot."""


@runtime_checkable
class ImageBackend(Backend, Protocol):
    """An image generation backend serving some horde image model names."""

    @property
    def models(self) -> Sequence[str]:
        """Horde model names this backend answers for."""

    async def generate(
        self, payload: dict[str, Any], *, source_image: Image | None = None
    ) -> list[GeneratedImage]:
        """Make ``payload["n_iter"]`` images for a popped image job's ``payload``."""


class BlockingRunner:
    """Runs blocking calls on one dedicated thread, so a backend's model is never used concurrently.

    ``await runner.run(fn, *args)`` calls ``fn(cancel_event, *args)`` on the thread. If the awaiting
    task is cancelled, a call still queued is dropped and a running one sees ``cancel_event`` set.
    ``await runner.aclose()`` cancels everything and waits for the running call to return, so the
    model can then be freed safely.
    """

    def __init__(self, name: str) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._active: set[threading.Event] = set()

    async def run[T](self, fn: Callable[..., T], *args: Any) -> T:
        cancel = threading.Event()
        self._active.add(cancel)
        future = self._executor.submit(fn, cancel, *args)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.set()
            future.cancel()
            raise
        finally:
            self._active.discard(cancel)

    async def aclose(self) -> None:
        for cancel in list(self._active):
            cancel.set()
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


async def load_backends[B: Backend](backends: Sequence[B]) -> tuple[list[B], dict[str, str]]:
    """Load each backend; return those ready and, by name, the reason each other one is not."""
    ready: list[B] = []
    unavailable: dict[str, str] = {}
    for backend in backends:
        try:
            await backend.load()
        except BackendUnavailable as exc:
            unavailable[backend.name] = exc.reason
        else:
            ready.append(backend)
    return ready, unavailable
