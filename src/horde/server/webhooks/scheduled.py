"""Retry due webhook deliveries that the in-process sender has not sent (after a crash, say)."""

from __future__ import annotations

from horde.server.state import Horde
from horde.server.webhooks.service import deliver_due


async def deliver_webhooks(horde: Horde) -> int:
    return await deliver_due(horde)
