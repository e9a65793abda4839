"""What a test needs from outside the repository: a ../shared file, an optional extra, a program.

When it is missing the test is skipped with a message saying what to install, except under
`CI=true`, where that is a failure: a CI checkout missing ../shared or an extra must not go green.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
# beside the repository; a git worktree elsewhere points at it with HORDE_TEST_SHARED
# the shared contract beside the repository (a worktree may sit one level deeper than the main checkout)
SHARED = Path(
    os.environ.get("HORDE_TEST_SHARED")
    or next(
        (p / "shared" for p in Path(__file__).resolve().parents[2:] if (p / "shared" / "api").is_dir()),
        Path(__file__).resolve().parents[2] / "shared",
    )
)


def missing(message: str) -> NoReturn:
    """Skip with `message`, or fail under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def shared_file(path: Path) -> Path:
    """A file of ../shared beside the repository (the reference API's swagger, model lists, ...)."""
    if not path.is_file():
        missing(f"{path} is absent: check out the shared/ folder beside the repository")
    return path


def module(name: str, *, extra: str) -> ModuleType:
    """`importorskip` that says which extra to install (`uv sync --extra NAME`)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"{name} cannot be imported ({exc}): install the {extra!r} extra (uv sync --extra {extra})")


def modules(*names: str, extra: str) -> None:
    """Every module of an extra, without importing them (for tests that start another process)."""
    absent = [name for name in names if importlib.util.find_spec(name) is None]
    if absent:
        missing(f"{', '.join(absent)} not installed: install the {extra!r} extra (uv sync --extra {extra})")


def program(name: str, *, install: str) -> str:
    """The path of a program on PATH; `install` says how to get it."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed: {install}")
    return path
