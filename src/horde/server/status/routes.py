"""`/status/*` and `/.well-known/serviceinfo`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from horde import __version__
from horde.contract import HeartbeatResponse
from horde.server.auth import HordeDep

router = APIRouter(tags=["v2"])
root_router = APIRouter(include_in_schema=False)


@router.get("/status/heartbeat", response_model=HeartbeatResponse)
async def get_heartbeat(horde: HordeDep) -> dict[str, Any]:
    try:
        async with horde.db.autocommit() as conn:
            await conn.execute(text("SELECT 1"))
        db_ok = True
    except Exception:  # the heartbeat reports a broken database instead of failing
        db_ok = False
    body: dict[str, Any] = {
        "message": "OK" if db_ok else "DOWN",
        "version": __version__,
        "db_connection": db_ok,
    }
    return body


@root_router.get("/.well-known/serviceinfo")
async def get_serviceinfo(horde: HordeDep) -> dict[str, Any]:
    return {
        "version": "1.0",
        "software": {"name": "horde", "version": __version__, "repository": "https://github.com/horde/horde"},
        "api": {"aihorde": {"name": "AI Horde API", "version": "2.5",
                            "base_url": f"{horde.settings.effective_public_url}/api/v2"}},
    }  # fmt: skip
