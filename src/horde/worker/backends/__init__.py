"""The worker's model backends behind one small interface (see :mod:`horde.worker.backends.base`).

Nothing here imports a model library at import time: each backend imports its engine in ``load()``
and raises :class:`BackendUnavailable` with the reason when it cannot, so the worker offers only what
loads. Errors are documented in :mod:`horde.worker.backends.base`.
"""

from horde.worker.backends.base import (
    AlchemyBackend,
    AlchemyResult,
    Backend,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BackendUnreachable,
    BadBackendResponse,
    GeneratedImage,
    ImageBackend,
    JobFailed,
    ParamNote,
    TextBackend,
    TextResult,
    UnsupportedJob,
    load_backends,
)
from horde.worker.backends.data import default_data_dir
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
    "GeneratedImage",
    "ImageBackend",
    "JobFailed",
    "ParamNote",
    "TextBackend",
    "TextParams",
    "TextResult",
    "UnsupportedJob",
    "default_data_dir",
    "load_backends",
]
