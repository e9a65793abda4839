"""Object writes that race, and what the 500 handler writes to the log."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from horde.server.app import create_app
from horde.server.images.storage import LocalStorage
from horde.server.state import Horde


def _names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def _storage(root: Path) -> LocalStorage:
    return LocalStorage(root, public_url="http://testserver", secret=b"s", url_ttl=60)


async def test_concurrent_writes_of_one_key_never_mix(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    bodies = [bytes([i]) * (256 * 1024 + i) for i in range(16)]
    await asyncio.gather(*(storage.put("one.webp", body) for body in bodies))
    assert await storage.get("one.webp") in bodies  # one whole write, not a mix of several
    assert _names(tmp_path) == ["one.webp"]  # no temporary file left behind


async def test_put_new_takes_the_key_once(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    bodies = [bytes([i]) * 100_000 for i in range(8)]
    taken = await asyncio.gather(*(storage.put_new("two.webp", body) for body in bodies))
    assert taken.count(True) == 1
    assert await storage.get("two.webp") == bodies[taken.index(True)]
    assert _names(tmp_path) == ["two.webp"]


async def test_the_500_log_holds_no_bound_values(horde: Horde, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(horde.settings, horde=horde)

    params = {"prompt": "MY SECRET PROMPT"}

    @app.get("/boom")
    async def boom() -> None:
        async with horde.db.autocommit() as conn:
            await conn.execute(text("SELECT :prompt FROM no_such_table"), params)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="horde.server.errors"):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error", "rc": "InternalServerError"}
    assert "no_such_table" in caplog.text  # the statement and the traceback are there
    assert "MY SECRET PROMPT" not in caplog.text
