"""The model reference lists (known image and text models), loaded at start-up from paths or URLs.

A horde that cannot load them still starts, accepts any model name and says so (heartbeat, log).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

SPECIAL_PREFIX = "horde_special"  # `horde_special::alias#id`: hidden, special users only (SEMANTICS.md 5, 8)
DEFAULT_MIN_STEPS = 20  # a model reference without step requirements: the reference's defaults
DEFAULT_MAX_STEPS = 40


def is_special_model(name: str) -> bool:
    return name.startswith(SPECIAL_PREFIX)


_QUANT = re.compile(r"(-|_)?(GPTQ|AWQ|GGUF|GGML|EXL2|[Qq]\d.*)$")
_PARAMS = re.compile(r"(\d+(?:\.\d+)?)\s*[bB]\b")


@dataclass
class ModelCatalog:
    image: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return bool(self.image) and bool(self.text)

    def is_known(self, kind: str, name: str) -> bool:
        table = self.image if kind == "image" else self.text
        return not table or name in table or strip_backend(name) in table

    def baseline(self, name: str) -> str | None:
        entry = self.image.get(name)
        return str(entry.get("baseline")) if entry else None

    def text_baseline(self, name: str) -> str | None:
        """The base model a text model's reference names, when it names one."""
        entry = self.text.get(name) or self.text.get(strip_backend(name)) or {}
        return str(entry["baseline"]) if entry.get("baseline") else None

    def max_steps(self, name: str) -> int | None:
        """The most steps an image model's reference allows, when it says."""
        entry = self.image.get(name) or {}
        steps = (entry.get("requirements") or {}).get("max_steps")
        return int(steps) if steps else None

    def average_steps(self, name: str) -> float:
        """The mean of an image model's min and max steps (`limit_max_steps` workers take no more)."""
        requirements = (self.image.get(name) or {}).get("requirements") or {}
        low = requirements.get("min_steps") or DEFAULT_MIN_STEPS
        high = requirements.get("max_steps") or DEFAULT_MAX_STEPS
        return (int(low) + int(high)) / 2

    def is_nsfw(self, name: str) -> bool:
        """Whether the image model reference flags a model NSFW."""
        entry = self.image.get(name)
        return bool(entry and entry.get("nsfw"))

    def text_params_billions(self, name: str) -> float | None:
        """Parameters (billions) of a text model: from the reference list, else from its name."""
        entry = self.text.get(name) or self.text.get(strip_backend(name))
        if entry and entry.get("parameters"):
            return float(entry["parameters"]) / 1e9
        match = _PARAMS.search(strip_backend(name))
        return float(match.group(1)) if match else None


def strip_backend(name: str) -> str:
    """`koboldcpp/Llama-3-8B-Q4_K_M` -> `Llama-3-8B` (backend prefix and quantisation dropped)."""
    base = name.split("/", 1)[1] if name.startswith(("koboldcpp/", "aphrodite/")) else name
    return _QUANT.sub("", base)


async def _read(source: str, client: httpx.AsyncClient) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        response = await client.get(source, timeout=10)
        response.raise_for_status()
        data = response.json()
    else:
        data = json.loads(await asyncio.to_thread(Path(source).read_text))
    if not isinstance(data, dict):
        raise ValueError("a model reference must be a JSON object")
    return data


async def load_catalog(image_source: str, text_source: str, client: httpx.AsyncClient) -> ModelCatalog:
    """Load both lists; a missing or broken list is recorded in `problems`, never raised."""
    catalog = ModelCatalog()
    for kind, source in (("image", image_source), ("text", text_source)):
        if not source:
            catalog.problems.append(f"no {kind} model reference configured")
            continue
        try:
            setattr(catalog, kind, await _read(source, client))
        except (OSError, ValueError, httpx.HTTPError) as exc:
            catalog.problems.append(f"{kind} model reference {source!r} could not be loaded: {exc}")
    for problem in catalog.problems:
        log.warning("%s; accepting any model name", problem)
    return catalog
