"""Server secrets (API-key pepper, URL signing key): from settings, else generated into the data dir."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path


def load_or_create(data_dir: Path, name: str, configured: str = "") -> str:
    """The configured value, or a random one kept in `data_dir/secrets/name` across restarts."""
    if configured:
        return configured
    path = data_dir / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def derive(secret: str, purpose: str) -> bytes:
    """A sub-key of `secret` for one purpose."""
    return hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
