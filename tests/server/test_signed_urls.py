"""Signed URLs of the local store over the API: served until they expire, refused after, and an
`expires` moved by hand breaks the signature. LocalStorage reads the wall clock; the test moves it."""

from __future__ import annotations

import time
import types

import httpx
import pytest

from horde.server.images import storage as storage_module
from horde.server.state import Horde


async def test_a_signed_url_expires_after_its_ttl(
    client: httpx.AsyncClient, horde: Horde, monkeypatch: pytest.MonkeyPatch
) -> None:
    await horde.storage.put("result.webp", b"RIFF....WEBP")
    start = time.time()
    monkeypatch.setattr(storage_module, "time", types.SimpleNamespace(time=lambda: start))
    url = httpx.URL(horde.storage.download_url("result.webp"))
    ttl = horde.settings.signed_url_ttl
    path = url.raw_path.decode()
    assert (await client.get(path)).status_code == 200
    later = str(int(url.params["expires"]) + 3600)
    moved = await client.get(url.path, params={"expires": later, "signature": url.params["signature"]})
    assert moved.status_code == 403 and moved.json()["rc"] == "Forbidden"
    monkeypatch.setattr(storage_module, "time", types.SimpleNamespace(time=lambda: start + ttl - 1))
    assert (await client.get(path)).status_code == 200  # still inside the ttl
    monkeypatch.setattr(storage_module, "time", types.SimpleNamespace(time=lambda: start + ttl + 1))
    expired = await client.get(path)
    assert expired.status_code == 403 and expired.json()["rc"] == "Forbidden"
