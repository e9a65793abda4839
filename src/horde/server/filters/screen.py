"""Screening a client's prompt before its request is accepted (SEMANTICS.md 8).

Invariants: a refused prompt (400 CorruptPrompt) still records the user's suspicion (its own
transaction: the request's fails) and calls the IP hooks; an accepted one is returned as workers will
get it (sanitised when it had to be).
"""

from __future__ import annotations

import asyncio
import logging

from horde.contract import FilterPromptSuspicion
from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.filters import prompt as pipeline
from horde.server.filters.prompt import PromptScreen
from horde.server.filters.regexes import FilterSet
from horde.server.state import Horde
from horde.server.users import service as users
from horde.server.users.models import Suspicion
from horde.server.users.principal import Principal

log = logging.getLogger(__name__)
CORRUPT_MESSAGE = (
    "This prompt appears to violate our terms of service and will be reported. Please contact us if you "
    "think this is an error."
)


def _screen(filters: FilterSet, screen: PromptScreen, *, flagged: bool, timeout: float) -> str | None:
    """The prompt to queue, or None to refuse it."""
    prompt: str | None = screen.prompt
    rating = pipeline.rate(filters, screen.prompt, timeout=timeout)
    if rating.suspicion >= 2 or flagged:
        if not screen.replacement and not flagged:
            return None
        if len(screen.prompt) > pipeline.REPLACEMENT_MAX_CHARS:
            limit = pipeline.REPLACEMENT_MAX_CHARS
            raise HordeError(
                RC.BadRequest, f"Prompt has to be below {limit} chars when replacement filter is on"
            )
        prompt = pipeline.sanitise(filters, screen.prompt, timeout=timeout)
    if prompt is not None and (screen.nsfw_models or flagged):
        prompt = pipeline.adult_pass(prompt)
    return prompt


async def screen_prompt(horde: Horde, screen: PromptScreen, *, user: Principal, ipaddr: str) -> str:
    """The prompt as workers will get it, or 400 CorruptPrompt after recording the user's suspicion."""
    filters = await horde.filters.current(horde.db)
    timeout = horde.settings.filter_search_timeout
    prompt = await asyncio.to_thread(_screen, filters, screen, flagged=user.flagged, timeout=timeout)
    if prompt is not None:
        return prompt
    async with horde.db.transaction() as conn:
        await users.report_suspicion(conn, user=user, reason=Suspicion.CORRUPT_PROMPT)
    for hook in horde.corrupt_prompt_hooks:
        await hook(ipaddr)
    log.warning("corrupt prompt refused", extra={"user": user.alias, "ipaddr": ipaddr})
    raise HordeError(RC.CorruptPrompt, CORRUPT_MESSAGE)


async def check_prompt(horde: Horde, *, prompt: str, filter_type: int | None) -> FilterPromptSuspicion:
    """How suspicious a prompt is (what a moderator's `POST /filters` asks); changes nothing."""
    filters = await horde.filters.current(horde.db)
    rating = await asyncio.to_thread(
        pipeline.rate, filters, prompt, timeout=horde.settings.filter_search_timeout, only_type=filter_type
    )
    return FilterPromptSuspicion(suspicion=str(rating.suspicion), matches=rating.matches)
