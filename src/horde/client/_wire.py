"""What the client does with answers: decode, parse into contract models, read headers; URL roots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from horde.client._exceptions import BadResponse
from horde.contract import InterrogationStatus

__all__ = ["api_root", "is_done", "parse", "query", "retry_after", "try_json"]


def api_root(base_url: str) -> str:
    """`https://h.net`, `https://h.net/api` and `https://h.net/api/v2/` all mean `https://h.net/api/v2`."""
    root = base_url.strip().rstrip("/")
    for suffix in ("/v2", "/api"):
        root = root.removesuffix(suffix)
    return f"{root}/api/v2"


def is_done(status: BaseModel) -> bool:
    if isinstance(status, InterrogationStatus):
        return status.state in ("done", "faulted", "cancelled")
    return bool(getattr(status, "done", False) or getattr(status, "faulted", False))


def parse[T](into: Callable[[Any], T], response: httpx.Response, *, raw: bool) -> T:
    if raw:
        return into(response)
    try:
        return into(decode(response))
    except ValidationError as exc:
        where = f"{response.request.method} {response.request.url.path}"
        raise BadResponse(
            f"{where}: unexpected answer: {parse_errors(exc)}", status=response.status_code
        ) from exc


def decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise BadResponse(
            f"{response.request.method} {response.request.url}: the answer is not JSON",
            status=response.status_code,
        ) from None


def try_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def query(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def parse_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
