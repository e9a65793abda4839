"""Choosing the object store from settings: an S3-compatible bucket when one is named, else local files."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from horde.server.config import Settings
from horde.server.images.storage import STORE_ID_FILE, LocalStorage, Storage

_MARKER = STORE_ID_FILE


def open_storage(settings: Settings, *, signing: bytes) -> tuple[Storage, str]:
    """The object store and its identity: nodes may serve together only when their identities match."""
    if settings.s3_bucket:
        from horde.server.images.s3 import S3Storage  # obstore is only loaded when S3 is used

        s3 = S3Storage(settings)
        return s3, s3.identity
    root = settings.data_dir / "objects"
    local = LocalStorage(
        root, public_url=settings.effective_public_url, secret=signing, url_ttl=settings.signed_url_ttl
    )
    return local, f"local:{_directory_id(root)}"


def _directory_id(root: Path) -> str:
    """A random id written once into the directory: nodes that read the same id share the directory."""
    marker = root / _MARKER
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return marker.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(16))
    return marker.read_text().strip()
