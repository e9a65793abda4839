"""Shared key bodies: `PUT /sharedkeys`, `GET|PATCH|DELETE /sharedkeys/{id}` (SEMANTICS.md 1.11)."""

from datetime import datetime

from pydantic import Field

from horde.contract.common import HordeModel, Omittable

MAX_SHARED_KEY_KUDOS = 50_000_000
MAX_SHARED_KEY_PIXELS = 4_194_304
MAX_SHARED_KEY_STEPS = 500
MAX_SHARED_KEY_TOKENS = 500
MAX_SHARED_KEY_DAYS = 36_500  # a key's expiry, in days: beyond it a date overflows (schemathesis found it)


class SharedKeyInput(HordeModel):
    """PUT /sharedkeys body; -1 means unlimited (kudos, the caps) or never (expiry, in days)."""

    kudos: int = Field(default=5000, ge=-1, le=MAX_SHARED_KEY_KUDOS)
    expiry: int = Field(default=-1, ge=-1, le=MAX_SHARED_KEY_DAYS)
    name: Omittable[str] = Field(default=None, min_length=3, max_length=255)
    max_image_pixels: int = Field(default=-1, ge=-1, le=MAX_SHARED_KEY_PIXELS)
    max_image_steps: int = Field(default=-1, ge=-1, le=MAX_SHARED_KEY_STEPS)
    max_text_tokens: int = Field(default=-1, ge=-1, le=MAX_SHARED_KEY_TOKENS)


class SharedKeyPatch(HordeModel):
    """PATCH /sharedkeys/{id} body (the swagger's SharedKeyInput, every field optional)."""

    kudos: Omittable[int] = Field(default=None, ge=-1, le=MAX_SHARED_KEY_KUDOS)
    expiry: Omittable[int] = Field(default=None, ge=-1, le=MAX_SHARED_KEY_DAYS)
    name: Omittable[str] = Field(default=None, min_length=3, max_length=255)
    max_image_pixels: Omittable[int] = Field(default=None, ge=-1, le=MAX_SHARED_KEY_PIXELS)
    max_image_steps: Omittable[int] = Field(default=None, ge=-1, le=MAX_SHARED_KEY_STEPS)
    max_text_tokens: Omittable[int] = Field(default=None, ge=-1, le=MAX_SHARED_KEY_TOKENS)


class SharedKeyDetails(HordeModel):
    """A shared key as its owner and anyone holding it see it."""

    id: str
    username: str
    name: str = ""  # horde-sdk requires a string; a key created without a name has ""
    kudos: int  # what is left to spend (-1: unlimited)
    expiry: Omittable[datetime] = None
    utilized: int
    max_image_pixels: int
    max_image_steps: int
    max_text_tokens: int
