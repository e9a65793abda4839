"""What each worker program can do, from its `bridge_agent` (ADR 0003).

A capability is a bit. A request stores the bits it needs in `requests.required_caps`; a worker's
effective bits are its bridge's bits AND its `allow_*` pop flags. Unknown bridges get nothing, as on
the reference (SEMANTICS.md 3.3).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntFlag
from pathlib import Path

OUR_BRIDGE = "horde-worker"


class Cap(IntFlag):
    R2 = 1 << 0
    R2_SOURCE = 1 << 1
    IMG2IMG = 1 << 2
    INPAINTING = 1 << 3
    CONTROLNET = 1 << 4
    HIRES_FIX = 1 << 5
    TILING = 1 << 6
    CLIP_SKIP = 1 << 7
    POST_PROCESSING = 1 << 8
    LORA = 1 << 9
    TI = 1 << 10
    LORA_VERSIONS = 1 << 11
    EXTRA_SOURCE_IMAGES = 1 << 12
    CASCADE_2PASS = 1 << 13
    QR_CODE = 1 << 14
    LAYER_DIFFUSE = 1 << 15
    FLUX = 1 << 16
    NEW_POST_PROCESSORS = 1 << 17
    SDXL_CONTROLNET = 1 << 18
    RETURN_CONTROL_MAP = 1 << 19
    KARRAS = 1 << 20
    NON_KARRAS = 1 << 21
    VALIDATED_BACKEND = 1 << 22  # text: a backend the reference validates (validated_backends)


ALL_CAPS = Cap(sum(c.value for c in Cap))

# Which `skipped` key a missing capability reports (SEMANTICS.md 3.3 step 5).
SKIP_KEY: dict[Cap, str] = {
    Cap.IMG2IMG: "img2img",
    Cap.INPAINTING: "painting",
    Cap.POST_PROCESSING: "post-processing",
    Cap.LORA: "lora",
    Cap.TI: "lora",
    Cap.CONTROLNET: "controlnet",
    Cap.SDXL_CONTROLNET: "controlnet",
}
DEFAULT_SKIP_KEY = "bridge_version"

_REGEN_BASE = (
    Cap.R2
    | Cap.R2_SOURCE
    | Cap.IMG2IMG
    | Cap.INPAINTING
    | Cap.CONTROLNET
    | Cap.HIRES_FIX
    | Cap.TILING
    | Cap.CLIP_SKIP
    | Cap.POST_PROCESSING
    | Cap.KARRAS
    | Cap.NON_KARRAS
    | Cap.RETURN_CONTROL_MAP
)
_LEGACY = Cap.R2 | Cap.IMG2IMG | Cap.INPAINTING | Cap.POST_PROCESSING | Cap.KARRAS | Cap.NON_KARRAS

# name -> [(minimum major version, capabilities gained at that version)]
BUILTIN_TABLE: dict[str, list[tuple[int, Cap]]] = {
    "AI Horde Worker reGen": [
        (1, _REGEN_BASE),
        (2, Cap.LORA | Cap.TI),
        (3, Cap.LORA_VERSIONS),
        (5, Cap.EXTRA_SOURCE_IMAGES),
        (6, Cap.CASCADE_2PASS),
        (7, Cap.QR_CODE),
        (8, Cap.LAYER_DIFFUSE),
        (9, Cap.FLUX),
        (13, Cap.NEW_POST_PROCESSORS),
    ],
    "AI Horde Worker": [(1, _REGEN_BASE | Cap.LORA | Cap.TI | Cap.LORA_VERSIONS)],
    "SD-WebUI Stable Horde Worker Bridge": [(1, _LEGACY)],
    "HordeAutoWebBridge": [(1, _LEGACY)],
    OUR_BRIDGE: [(0, Cap.R2 | Cap.R2_SOURCE | Cap.IMG2IMG | Cap.KARRAS | Cap.NON_KARRAS)],
}

VALIDATED_TEXT_BACKENDS = frozenset(
    {
        "AI Horde Worker",
        "AI Horde Worker~aphrodite~oai",
        "AI Horde Worker~aphrodite~kai",
        "KoboldCppEmbedWorker",
        "TabbyAPI",
        OUR_BRIDGE,
    }
)


# Worker rewards by bridge (SEMANTICS.md 4.5): an official bridge at its latest version is paid in full,
# an older version of one 0.9, any other bridge 0.75. name -> latest major version. Ours counts as
# official at its latest version whatever it reports (ADR 0023); the others' figures are their latest
# releases when this table was written, so an operator's capability file may raise them.
OFFICIAL_BRIDGES: dict[str, int] = {
    "AI Horde Worker reGen": 10,
    "AI Horde Worker": 24,
    "KoboldAI Horde Bridge": 1,
    "KoboldCppEmbedWorker": 1,
    "AI Horde Worker~aphrodite~oai": 1,
    "AI Horde Worker~aphrodite~kai": 1,
    "TabbyAPI": 1,
    "horde-alchemist": 1,
}
LATEST_MULTIPLIER = 1.0
OLDER_MULTIPLIER = 0.9
OTHER_MULTIPLIER = 0.75


def parse_bridge_agent(agent: str) -> tuple[str, int]:
    """`name:version:url` -> (name, major version); an unparsable version counts as 0."""
    name, _, rest = agent.partition(":")
    version = rest.split(":", 1)[0]
    digits = version.lstrip("vV").split(".", 1)[0]
    numeric = digits.isascii() and digits.isdigit() and len(digits) < 10
    return name.strip(), int(digits) if numeric else 0


@dataclass(frozen=True)
class CapabilityTable:
    table: Mapping[str, list[tuple[int, Cap]]]
    latest: Mapping[str, int] = field(default_factory=lambda: dict(OFFICIAL_BRIDGES))

    def reward_multiplier(self, bridge_agent: str) -> float:
        """What a job's generation kudos are multiplied by for the worker (SEMANTICS.md 4.5)."""
        name, major = parse_bridge_agent(bridge_agent)
        if name == OUR_BRIDGE:
            return LATEST_MULTIPLIER
        latest = self.latest.get(name)
        if latest is None:
            return OTHER_MULTIPLIER
        return LATEST_MULTIPLIER if major >= latest else OLDER_MULTIPLIER

    def caps_of(self, bridge_agent: str) -> Cap:
        """The capabilities a bridge_agent string grants (none for unknown names)."""
        name, major = parse_bridge_agent(bridge_agent)
        caps = Cap(0)
        for minimum, gained in self.table.get(name, ()):
            if major >= minimum:
                caps |= gained
        return caps

    def is_validated_text_backend(self, bridge_agent: str) -> bool:
        return parse_bridge_agent(bridge_agent)[0] in VALIDATED_TEXT_BACKENDS


def _caps(names: Iterable[str]) -> Cap:
    caps = Cap(0)
    for name in names:
        caps |= Cap[name.upper()]
    return caps


def load_table(extension_path: str = "") -> CapabilityTable:
    """The built-in table, extended by an operator's JSON file `{name: {version: [caps]}}`; a bridge named
    there counts as official, at the highest version the file lists (its reward multiplier)."""
    table = {name: list(entries) for name, entries in BUILTIN_TABLE.items()}
    latest = dict(OFFICIAL_BRIDGES)
    if extension_path:
        extra = json.loads(Path(extension_path).read_text())
        for name, versions in extra.items():
            entries = [(int(str(v).split(".")[0]), _caps(c)) for v, c in versions.items()]
            table[name] = sorted(entries)
            latest[name] = max([latest.get(name, 0), *(major for major, _ in entries)])
    return CapabilityTable(table, latest)
