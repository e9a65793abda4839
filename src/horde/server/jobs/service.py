"""The jobs domain's public service functions (one module per concern behind this facade).

Invariants: see `requests` (accepting), `claims` (popping), `results` (submitting) and `status`.
"""

from __future__ import annotations

from typing import Any

from horde.contract.common import HordeModel
from horde.server.jobs.claims import pop_jobs
from horde.server.jobs.idempotency import submit_once
from horde.server.jobs.kinds import KINDS
from horde.server.jobs.requests import cancel_request, submit_request
from horde.server.jobs.results import fault_jobs, submit_job
from horde.server.jobs.status import parse_request_id, request_status
from horde.server.state import Horde


async def get_status(horde: Horde, *, kind: str, raw_id: str, full: bool) -> dict[str, Any]:
    """A request's status (check or full)."""
    return await request_status(horde, kind=kind, request_id=parse_request_id(raw_id), full=full)


async def cancel(horde: Horde, *, kind: str, raw_id: str) -> HordeModel:
    """Cancel a request; answers its full status as it was before cancelling."""
    request_id = parse_request_id(raw_id)
    status = await request_status(horde, kind=kind, request_id=request_id, full=True)
    await cancel_request(horde, kind=kind, request_id=request_id)
    return KINDS[kind].full_status.model_validate(status)


__all__ = ["cancel", "fault_jobs", "get_status", "pop_jobs", "submit_job", "submit_once", "submit_request"]
