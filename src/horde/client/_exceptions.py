"""Every error the client raises, and the mapping from an answer's status and `rc` to one of them.

Exceptions (all subclasses of :class:`HordeError`, each with ``.message``, ``.rc`` and ``.status``)::

    HordeError                  base; ``rc``: the wire rc ("" when none); ``status``: 0 when no answer;
                                ``attempts``: how many tries the client made
    ├── HordeUnreachable        no answer: connection refused, reset or timed out (after the retries)
    ├── BadResponse             an answer that is not the expected JSON (garbage, an HTML error page)
    ├── ServerError             a 5xx answer (after the retries)
    └── RequestRejected         a 4xx answer: the horde refused this request
        ├── ValidationFailed    400 schema validation failure; ``errors`` maps field -> reason
        ├── BadRequest          400 with an rc
        │   ├── DuplicateGen    the job was already submitted (a retried submit treats it as success)
        │   ├── AbortedGen      the job timed out or was aborted before this submit
        │   ├── MaintenanceMode the horde refuses new requests for now
        │   └── TokenOverflow   max_length is above max_context_length
        ├── InvalidAPIKey       401
        ├── Forbidden           403
        │   ├── KudosUpfront    the request needs kudos up front that the user does not have
        │   ├── WrongCredentials the key does not own this worker or job
        │   ├── AnonForbidden   the anonymous key cannot do this (e.g. run a worker)
        │   └── WorkerMaintenance the worker is in maintenance: no jobs but its owner's
        ├── NotFound            404 (InvalidJobID, RequestNotFound, WorkerNotFound, UserNotFound, ...)
        ├── RequestExpired      410
        ├── Locked              423
        └── TooManyRequests     429
            ├── TooManyPrompts  the user's concurrency limit (an rc): wait for running requests
            └── RateLimited     the rate limiter (no rc): slow down and retry

The class of an answer is chosen by its rc first (see ``_BY_RC``), then by its status.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AbortedGen",
    "AnonForbidden",
    "BadRequest",
    "BadResponse",
    "DuplicateGen",
    "Forbidden",
    "HordeError",
    "HordeUnreachable",
    "InvalidAPIKey",
    "KudosUpfront",
    "Locked",
    "MaintenanceMode",
    "NotFound",
    "RateLimited",
    "RequestExpired",
    "RequestRejected",
    "ServerError",
    "TokenOverflow",
    "TooManyPrompts",
    "TooManyRequests",
    "ValidationFailed",
    "WorkerMaintenance",
    "WrongCredentials",
    "error_from_answer",
]


class HordeError(Exception):
    """Base of every client error: ``message``, the wire ``rc`` ("" when none) and HTTP ``status``."""

    def __init__(self, message: str, *, rc: str = "", status: int = 0) -> None:
        super().__init__(f"{message} ({rc or status})" if (rc or status) else message)
        self.message = message
        self.rc = rc
        self.status = status
        self.attempts = 1  # how many tries the client made before giving up


class HordeUnreachable(HordeError):
    """The horde did not answer: connection refused, dropped or timed out."""


class BadResponse(HordeError):
    """The horde answered something that is not the JSON this call expects."""


class ServerError(HordeError):
    """The horde answered 5xx."""


class RequestRejected(HordeError):
    """The horde refused the request (4xx)."""


class ValidationFailed(RequestRejected):
    """400 schema validation failure: ``errors`` maps each bad field to the reason."""

    def __init__(
        self, message: str, *, rc: str = "", status: int = 400, errors: dict[str, str] | None = None
    ):
        super().__init__(message, rc=rc, status=status)
        self.errors = dict(errors or {})


class BadRequest(RequestRejected):
    """400 with an rc."""


class DuplicateGen(BadRequest):
    """The job was already submitted."""


class AbortedGen(BadRequest):
    """The job timed out or was aborted before this submit arrived."""


class MaintenanceMode(BadRequest):
    """The horde is in maintenance and accepts no new requests."""


class TokenOverflow(BadRequest):
    """max_length is above max_context_length."""


class InvalidAPIKey(RequestRejected):
    """401: the API key is unknown."""


class Forbidden(RequestRejected):
    """403: this key may not do this."""


class KudosUpfront(Forbidden):
    """The request needs kudos up front that the user does not have."""


class WrongCredentials(Forbidden):
    """The key does not own the worker or the job."""


class AnonForbidden(Forbidden):
    """The anonymous key may not do this."""


class WorkerMaintenance(Forbidden):
    """The worker is in maintenance: it gets no jobs but its owner's."""


class NotFound(RequestRejected):
    """404: no such request, job, worker or user."""


class RequestExpired(RequestRejected):
    """410: the request expired."""


class Locked(RequestRejected):
    """423: the object is still in use."""


class TooManyRequests(RequestRejected):
    """429."""


class TooManyPrompts(TooManyRequests):
    """The user's concurrency limit: too many requests in the queue."""


class RateLimited(TooManyRequests):
    """The rate limiter refused the call; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, message: str, *, rc: str = "", status: int = 429, retry_after: float | None = None):
        super().__init__(message, rc=rc, status=status)
        self.retry_after = retry_after


_BY_RC: dict[str, type[HordeError]] = {
    "DuplicateGen": DuplicateGen,
    "AbortedGen": AbortedGen,
    "MaintenanceMode": MaintenanceMode,
    "TokenOverflow": TokenOverflow,
    "InvalidAPIKey": InvalidAPIKey,
    "KudosUpfront": KudosUpfront,
    "WrongCredentials": WrongCredentials,
    "AnonForbidden": AnonForbidden,
    "AnonForbiddenWorker": AnonForbidden,
    "AnonForbiddenUserMod": AnonForbidden,
    "AnonForbiddenUser": AnonForbidden,
    "WorkerMaintenance": WorkerMaintenance,
    "TooManyPrompts": TooManyPrompts,
    "RequestExpired": RequestExpired,
    "Locked": Locked,
}
_BY_STATUS: dict[int, type[HordeError]] = {
    400: BadRequest,
    401: InvalidAPIKey,
    403: Forbidden,
    404: NotFound,
    410: RequestExpired,
    423: Locked,
    429: TooManyRequests,
}


def _class_for(status: int, rc: str) -> type[HordeError]:
    if rc in _BY_RC:
        return _BY_RC[rc]
    if status == 404 or rc.endswith("NotFound"):
        return NotFound
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return RequestRejected


def error_from_answer(status: int, body: Any, *, retry_after: float | None = None) -> HordeError:
    """The error for a non-2xx answer whose decoded body is ``body`` (None when it was not JSON)."""
    if not isinstance(body, dict):
        if status >= 500:
            return ServerError(f"the horde answered {status}", status=status)
        if status == 429:
            return RateLimited("rate limited", status=status, retry_after=retry_after)
        return BadResponse(f"the horde answered {status} with a body that is not JSON", status=status)
    message = str(body.get("message") or f"the horde answered {status}")
    rc = str(body.get("rc") or "")
    if status == 400 and not rc and isinstance(body.get("errors"), dict):
        errors = {str(k): str(v) for k, v in body["errors"].items()}
        return ValidationFailed(message, status=status, errors=errors)
    if status == 429 and not rc:
        return RateLimited(message, status=status, retry_after=retry_after)
    return _class_for(status, rc)(message, rc=rc, status=status)
