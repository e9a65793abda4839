"""The Python twin of the claim's shared SQL filters (`filters.py`): why a worker skips a request.

Each kind combines these with its own checks in `Kind.skip_reason`; the snapshot uses them for the
`skipped` counts, `is_possible` and queue positions. A test checks that SQL and Python agree.
"""

from __future__ import annotations

from horde.server.jobs.records import QueuedRequest, WorkerProfile
from horde.server.workers.capabilities import ALL_CAPS, DEFAULT_SKIP_KEY, SKIP_KEY


def _worker_list_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    if not q.worker_ids:
        return None
    listed = w.worker_id in q.worker_ids
    return "worker_id" if listed == q.worker_blacklist else None


def _caps_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    missing = q.required_caps & (ALL_CAPS & ~w.caps)
    if not missing:
        return None
    for cap, key in SKIP_KEY.items():
        if missing & cap:
            return key
    return DEFAULT_SKIP_KEY


def common_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    if reason := _worker_list_reason(q, w):
        return reason
    if (not q.slow_workers and w.slow) or (w.extra_slow and not q.extra_slow_workers):
        return "performance"
    if q.trusted_workers and not w.owner_trusted:
        return "untrusted"
    return _caps_reason(q, w)


def blacklisted(prompt: str, blacklist: tuple[str, ...]) -> bool:
    lowered = prompt.lower()
    return any(word in lowered for word in blacklist)


def models_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    if q.any_model or (q.models & w.models):
        return None
    return "models"
