"""Checks and helpers more than one kind uses."""

from __future__ import annotations

import random
import uuid
from typing import Any

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.images.sources import resolve_checked
from horde.server.jobs.records import SubmitOutcome, WorkerProfile
from horde.server.resources import Resources
from horde.server.users.principal import Principal

MAX_TARGET_WORKERS = 5


def refuse_unbuilt(body: Any, user: Principal) -> None:
    """Only service accounts may name the account they proxy for (SEMANTICS.md 1.1, 5)."""
    if getattr(body, "proxied_account", None) and not user.service:
        raise HordeError(RC.OnlyServiceAccountProxy, "Only service accounts can use proxied_account")


MAX_REQUEST_MODELS = 100
MAX_MODEL_NAME = 255


def requested_models(models: list[str]) -> list[str]:
    """The request's model names, de-duplicated; too many or too long is a 400 (the columns hold 255)."""
    if len(models) > MAX_REQUEST_MODELS or any(len(m) > MAX_MODEL_NAME for m in models):
        raise HordeError(RC.BadRequest, f"At most {MAX_REQUEST_MODELS} models of {MAX_MODEL_NAME} characters")
    return list(dict.fromkeys(models))


def target_workers(body: Any) -> list[uuid.UUID]:
    """The first 5 `workers` ids (the reference drops the rest); a malformed id is a 404 as unknown."""
    ids: list[uuid.UUID] = []
    for raw in list(getattr(body, "workers", []) or [])[:MAX_TARGET_WORKERS]:
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError:
            raise HordeError(RC.WorkerNotFound, f"Worker with ID '{raw}' not found") from None
    return ids


async def check_webhook(horde: Resources, url: str | None) -> str | None:
    """Webhooks must be https (http too when private URLs are allowed) and obey the URL policy."""
    if not url:
        return None
    allowed = ("https://", "http://") if horde.settings.allow_private_source_urls else ("https://",)
    if not url.startswith(allowed) or not 10 <= len(url) <= 1024:
        raise HordeError(RC.BadRequest, "webhook must be an https:// URL of 10 to 1024 characters")
    await resolve_checked(url, horde.source_policy, rc=RC.BadRequest)
    return url


def check_batching(body: Any, user: Principal) -> None:
    if getattr(body, "disable_batching", False) and not user.is_trusted:
        raise HordeError(RC.RequiresTrust, "Only trusted users may disable batching")


def problem_outcome(reward: float, seed: object, meta: list[dict[str, Any]]) -> SubmitOutcome:
    """A job the worker reported as CSAM: no result kept or served, the requester not charged, the worker
    paid for the work as for a censored one (SEMANTICS.md 3.4), and a problem-job record for moderators."""
    state = {"state": "csam", "censored": True, "gen_metadata": meta, "seed": seed}
    return SubmitOutcome(result=None, meta=state, reward=reward, burn=0.0, problem=True)


def random_seed() -> int:
    return random.randint(0, 2**32 - 1)


def blacklist_words(words: list[str]) -> tuple[str, ...]:
    """A worker's blacklist as the matching uses it: at most 200 words, cut to 15 chars, lowercased."""
    return tuple(sorted({w.strip().lower()[:15] for w in words[:200] if w.strip()}))


def common_config(body: Any) -> dict[str, Any]:
    """The check-in fields every kind stores in the worker's `config`."""
    return {
        "blacklist": list(blacklist_words(list(getattr(body, "blacklist", []) or []))),
        "extra_slow": bool(getattr(body, "extra_slow_worker", False)),
        "allow_unsafe_ipaddr": bool(getattr(body, "allow_unsafe_ipaddr", True)),
        "require_upfront_kudos": bool(getattr(body, "require_upfront_kudos", False)),
    }


def base_profile(worker: dict[str, Any], *, kind: str, owner_trusted: bool, amount: int) -> dict[str, Any]:
    """The WorkerProfile fields every kind shares, from a worker record."""
    config = worker.get("config") or {}
    return {
        "worker_id": worker["id"],
        "owner_id": worker["user_id"],
        "kind": kind,
        "owner_trusted": owner_trusted,
        "amount": amount,
        "threads": int(worker.get("threads") or 1),
        "speed": float(worker.get("speed") or 1.0),
        "nsfw": bool(worker.get("nsfw")),
        "extra_slow": bool(config.get("extra_slow", False)),
        "blacklist": tuple(config.get("blacklist", ())),
        "allow_unsafe_ip": bool(config.get("allow_unsafe_ipaddr", True)),
        "require_upfront_kudos": bool(config.get("require_upfront_kudos", False)) and kind != "alchemy",
    }


def with_caps(profile: dict[str, Any], caps: int) -> WorkerProfile:
    return WorkerProfile(**profile, caps=caps)
