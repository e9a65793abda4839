"""The storage interface behind the `r2` flow, and its local backend (files in the data dir).

The local backend signs expiring upload (PUT) and download (GET) URLs that the horde itself serves
under `/objects/{key}` (`images/routes.py`); an S3-compatible backend implements the same protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlencode

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")


class Storage(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...
    async def put_new(self, key: str, data: bytes) -> bool: ...
    async def get(self, key: str) -> bytes | None: ...
    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str) -> None: ...
    def download_url(self, key: str) -> str: ...
    def upload_url(self, key: str) -> str: ...
    async def purge(self, older_than: float) -> int: ...


def valid_key(key: str) -> bool:
    return bool(_KEY.match(key)) and ".." not in key


STORE_ID_FILE = ".horde-store-id"  # the directory's identity (backends.py): never purged


class LocalStorage:
    """Objects as files under `root`; URLs signed with HMAC-SHA256 and served by the horde."""

    def __init__(self, root: Path, *, public_url: str, secret: bytes, url_ttl: float) -> None:
        self.root = root
        self.public_url = public_url.rstrip("/")
        self.secret = secret
        self.url_ttl = url_ttl
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not valid_key(key):
            raise ValueError(f"invalid object key {key!r}")
        return self.root / key

    def signature(self, method: str, key: str, expires: int) -> str:
        message = f"{method}\n{key}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def verify(self, method: str, key: str, expires: int, signature: str) -> bool:
        if expires < time.time() or not valid_key(key):
            return False
        return hmac.compare_digest(self.signature(method, key, expires), signature)

    def _url(self, method: str, key: str) -> str:
        expires = int(time.time() + self.url_ttl)
        query = urlencode({"expires": expires, "signature": self.signature(method, key, expires)})
        return f"{self.public_url}/objects/{quote(key)}?{query}"

    def download_url(self, key: str) -> str:
        return self._url("GET", key)

    def upload_url(self, key: str) -> str:
        return self._url("PUT", key)

    async def put(self, key: str, data: bytes) -> None:
        """Write (or replace) an object; on disk when this returns."""
        await asyncio.to_thread(self._write, self._path(key), data, replace=True)

    async def put_new(self, key: str, data: bytes) -> bool:
        """Write an object that does not exist yet; False (and nothing written) when it does."""
        return await asyncio.to_thread(self._write, self._path(key), data, replace=False)

    @staticmethod
    def _write(path: Path, data: bytes, *, replace: bool) -> bool:
        # a temporary file of its own per write (concurrent writes of one key never share one),
        # synced before it takes the key's name, so a key names a whole object even after a crash
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)  # atomic and exclusive: fails when the key exists
                except FileExistsError:
                    return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new name is on disk too
        finally:
            os.close(directory)
        return True

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def purge(self, older_than: float) -> int:
        """Delete objects last written before `older_than` (epoch seconds)."""
        return await asyncio.to_thread(self._purge, older_than)

    def _purge(self, older_than: float) -> int:
        removed = 0
        for path in self.root.iterdir():
            if path.name == STORE_ID_FILE:  # written once; purging it would split the nodes sharing root
                continue
            try:
                if path.stat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
