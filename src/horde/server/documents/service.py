"""The documents: files read from the operator's directory, or the packaged defaults.

Invariants: each format of a document is its own file (`terms.md`, `terms.html`): the operator's when
`HORDE_DOCUMENTS_DIR` has one of that name, the packaged default otherwise (no markdown renderer to
depend on, and an operator may write either by hand). Answers are kept for a minute on this node, so a
replaced file is served within a minute without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Literal

from horde.contract import HordeDocument
from horde.contract.rc import RC
from horde.server.documents import DEFAULTS
from horde.server.errors import HordeError
from horde.server.state import Horde

log = logging.getLogger(__name__)

DocumentName = Literal["terms", "privacy", "sponsors"]
DOCUMENT_TTL = 60.0
FORMATS = {"html": "html", "markdown": "md"}  # format -> file suffix


def _read(directory: str, filename: str) -> str:
    if directory:
        path = Path(directory) / filename
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("document %s could not be read, serving the default: %s", path, exc)
    return (DEFAULTS / filename).read_text(encoding="utf-8")


def _load(directory: str, name: str, fmt: str) -> HordeDocument:
    text = _read(directory, f"{name}.{FORMATS[fmt]}")
    return HordeDocument.model_validate({fmt: text})


async def document(horde: Horde, *, name: DocumentName, fmt: str) -> HordeDocument:
    """A document in `html` or `markdown` (any other format is 400 BadRequest, as on the reference)."""
    if fmt not in FORMATS:
        raise HordeError(RC.BadRequest, "'format' needs to be 'html' or 'markdown'")
    directory = horde.settings.documents_dir

    async def compute() -> HordeDocument:
        return await asyncio.to_thread(_load, directory, name, fmt)

    return await horde.answers.get(("documents", name, fmt), DOCUMENT_TTL, compute)
