"""Where the worker keeps model files it assembles or fetches: ``<data dir>/models/<family>/<file>``.

The data dir is chosen by the worker's configuration; :func:`default_data_dir` is the fallback
(``~/.local/share/horde``). Files are written to a temporary name and renamed into place, so a
half-written model is never picked up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output", "concatenate", "default_data_dir", "model_path"]


def default_data_dir() -> Path:
    """The per-user data directory used when the worker configuration names none."""
    return Path.home() / ".local" / "share" / "horde"


def model_path(data_dir: Path, family: str, filename: str) -> Path:
    """The place of one model file inside ``data_dir``."""
    return data_dir / "models" / family / filename


@contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        yield partial
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def concatenate(parts: Iterable[Path], target: Path) -> None:
    """Write the files ``parts`` one after another into ``target`` (atomically)."""
    with atomic_output(target) as partial, partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 20):
                    out.write(block)
