"""Small helpers the server tests share: test images, request counting and test users."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import func, select

from horde.server.jobs.models import Job, Request
from horde.server.state import Horde

V2 = "/api/v2"


def png_bytes(width: int = 64, height: int = 64, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def webp_b64(width: int = 64, height: int = 64) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="WEBP")
    return base64.b64encode(out.getvalue()).decode()


def png_b64(width: int = 64, height: int = 64) -> str:
    return base64.b64encode(png_bytes(width, height)).decode()


async def row_counts(horde: Horde) -> tuple[int, int]:
    """(requests, jobs) stored."""
    async with horde.db.autocommit() as conn:
        requests = await conn.scalar(select(func.count()).select_from(Request))
        jobs = await conn.scalar(select(func.count()).select_from(Job))
    return int(requests or 0), int(jobs or 0)


async def new_user(client: httpx.AsyncClient, name: str, **extra: Any) -> str:
    """The key of a new plain user (neither moderator nor trusted unless `extra` says so)."""
    body = {"username": name, "oauth_id": f"oauth-{name}", "moderator": False, "trusted": False, **extra}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key
