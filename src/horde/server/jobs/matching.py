"""The Python twin of the claim's SQL filters: why a worker would skip a queued request.

It serves the `skipped` counts, `is_possible` and queue positions from the snapshot; the claim itself
runs in SQL (`queries.claim_statement`). A test checks that both agree on random queues.
"""

from __future__ import annotations

from horde.server.jobs.records import QueuedRequest, WorkerProfile
from horde.server.workers.capabilities import ALL_CAPS, DEFAULT_SKIP_KEY, SKIP_KEY, Cap


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


def _models_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    if q.any_model or (q.models & w.models):
        return None
    return "models"


def _common_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
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


def image_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    if q.pixels > w.max_pixels:
        return "max_pixels"
    if reason := _models_reason(q, w):
        return reason
    if reason := _common_reason(q, w):
        return reason
    if q.nsfw and not w.nsfw:
        return "nsfw"
    if w.blacklist and blacklisted(q.prompt, w.blacklist):
        return "blacklist"
    return None


def text_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    if q.max_length > w.max_length:
        return "max_length"
    if q.max_context_length > w.max_context_length:
        return "max_context_length"
    if reason := _models_reason(q, w):
        return reason
    if reason := _common_reason(q, w):
        return reason
    if w.blacklist and blacklisted(q.prompt, w.blacklist):
        return "blacklist"
    return None


def alchemy_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    if not (q.forms & w.forms) or q.tiles > w.max_tiles:
        return "forms"  # not reported by the reference: the worker never asked for these
    return _common_reason(q, w)


REASONS = {"image": image_reason, "text": text_reason, "alchemy": alchemy_reason}


def skip_reason(q: QueuedRequest, w: WorkerProfile) -> str | None:
    """The `skipped` key that keeps worker `w` from request `q`, or None when it could take it."""
    return REASONS[w.kind](q, w)


__all__ = ["Cap", "blacklisted", "skip_reason"]
