"""The behaviour registry: one `Kind` per kind of work (image, text, alchemy)."""

from horde.server.jobs.kinds.alchemy import AlchemyKind
from horde.server.jobs.kinds.base import Kind
from horde.server.jobs.kinds.image import ImageKind
from horde.server.jobs.kinds.text import TextKind

KINDS: dict[str, Kind] = {kind.name: kind for kind in (ImageKind(), TextKind(), AlchemyKind())}
API_TYPES: dict[str, str] = {kind.api_type: kind.name for kind in KINDS.values()}

__all__ = ["API_TYPES", "KINDS", "Kind"]
