"""API keys: 22 random characters, stored as a peppered SHA-256 (random keys need no slow hash)."""

from __future__ import annotations

import hashlib
import secrets

from horde.server.users.models import ANON_API_KEY

ANON_KEY_HASH = "anonymous"


def new_api_key() -> str:
    """A fresh random key of 22 URL-safe characters."""
    return secrets.token_urlsafe(16)


def hash_api_key(key: str, *, pepper: str) -> str:
    """The stored form of a key."""
    if key == ANON_API_KEY:
        return ANON_KEY_HASH
    return hashlib.sha256(f"{pepper}:{key}".encode()).hexdigest()
