"""The horde's documents (terms, privacy, sponsors) and its news feed: files an operator replaces.

The defaults in `defaults/` say that this is a self-hosted horde; `HORDE_DOCUMENTS_DIR` and
`HORDE_NEWS_FILE` point at the operator's own.
"""

from pathlib import Path

DEFAULTS = Path(__file__).resolve().parent / "defaults"
DEFAULT_NEWS = DEFAULTS / "news.json"
