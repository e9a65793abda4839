"""The S3-compatible storage backend (AWS S3, R2, MinIO, ...): presigned URLs, as the reference's R2 flow.

Workers upload results straight to the bucket with a presigned PUT, and clients download them with a
presigned GET (SEMANTICS.md 7: 30 minutes by default); the horde itself only writes what it re-encodes
(sources, base64 results) and reads what it must inline. Signing is local computation (no request);
transfers use obstore's async client, whose I/O runs in Rust off the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import obstore
from obstore.exceptions import AlreadyExistsError
from obstore.store import S3Store

from horde.server.config import Settings
from horde.server.images.storage import valid_key

_DELETE_BATCH = 1000  # S3's DeleteObjects limit


def _store(settings: Settings, endpoint: str) -> S3Store:
    options: dict[str, Any] = {
        "region": settings.s3_region,
        "virtual_hosted_style_request": settings.s3_virtual_hosted,
    }
    if endpoint:
        options["endpoint"] = endpoint
    if settings.s3_access_key_id:
        options["access_key_id"] = settings.s3_access_key_id
        options["secret_access_key"] = settings.s3_secret_access_key
    return S3Store(
        settings.s3_bucket,
        config=options,  # type: ignore[arg-type]
        client_options={"allow_http": endpoint.startswith("http://"), "timeout": "30s"},
    )


class S3Storage:
    """Objects in one bucket; keys as the local backend's (`<job id>.webp`, `<request id>_src.webp`)."""

    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self.endpoint = settings.s3_endpoint
        self.url_ttl = timedelta(seconds=settings.signed_url_ttl)
        self._store = _store(settings, settings.s3_endpoint)
        # URLs are signed for the address clients reach, which may differ from the node's (compose)
        public = settings.s3_public_endpoint
        self._signer = _store(settings, public) if public and public != settings.s3_endpoint else self._store

    @property
    def identity(self) -> str:
        return f"s3:{self.endpoint or 'aws'}/{self.bucket}"

    def _key(self, key: str) -> str:
        if not valid_key(key):
            raise ValueError(f"invalid object key {key!r}")
        return key

    async def put(self, key: str, data: bytes) -> None:
        await obstore.put_async(self._store, self._key(key), data)

    async def put_new(self, key: str, data: bytes) -> bool:
        """Write an object that does not exist yet (a conditional PUT); False when it does."""
        try:
            await obstore.put_async(self._store, self._key(key), data, mode="create")
        except AlreadyExistsError:
            return False
        return True

    async def get(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self._store, self._key(key))
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            return None

    async def exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self._store, self._key(key))
        except FileNotFoundError:
            return False
        return True

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self._store, self._key(key))

    def download_url(self, key: str) -> str:
        return obstore.sign(self._signer, "GET", self._key(key), self.url_ttl)

    def upload_url(self, key: str) -> str:
        return obstore.sign(self._signer, "PUT", self._key(key), self.url_ttl)

    async def purge(self, older_than: float) -> int:
        """Delete objects last written before `older_than` (epoch seconds).

        A bucket lifecycle rule can do the same at day granularity; this keeps the reference's
        120-minute retention (README, operators' section).
        """
        cutoff = datetime.fromtimestamp(older_than, UTC)
        old: list[str] = []
        async for batch in obstore.list(self._store, chunk_size=_DELETE_BATCH):
            old.extend(meta["path"] for meta in batch if meta["last_modified"] < cutoff)
        for chunk in _chunks(old, _DELETE_BATCH):
            await obstore.delete_async(self._store, chunk)
        return len(old)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
