"""A typed async client of the AI Horde API v2 (any horde: this one or the reference).

    async with HordeClient("http://127.0.0.1:7001", api_key) as horde:
        accepted = await horde.text_async(GenerationInputKobold(prompt="Once upon a time"))
        status = await horde.text_wait(accepted.id)

Bodies and answers are the `horde.contract` models. Failures raise one tree of exceptions rooted at
`HordeError` (documented in `horde.client._exceptions`); transient ones are retried per a
`RetryPolicy` without ever repeating a call whose repeat could double an effect (`horde.client._retry`).
The library reads no environment: `HORDE_URL` and `HORDE_API_KEY` are the CLI's and the worker's.
"""

from horde.client._client import DEFAULT_CLIENT_AGENT, HordeClient, JobSubmitted
from horde.client._exceptions import (
    AbortedGen,
    AnonForbidden,
    BadRequest,
    BadResponse,
    DuplicateGen,
    Forbidden,
    HordeError,
    HordeUnreachable,
    InvalidAPIKey,
    KudosUpfront,
    Locked,
    MaintenanceMode,
    NotFound,
    RateLimited,
    RequestExpired,
    RequestRejected,
    ServerError,
    TokenOverflow,
    TooManyPrompts,
    TooManyRequests,
    ValidationFailed,
    WorkerMaintenance,
    WrongCredentials,
)
from horde.client._retry import NO_RETRY, Idempotency, RetryPolicy
from horde.client._wire import api_root

__all__ = [
    "DEFAULT_CLIENT_AGENT",
    "NO_RETRY",
    "AbortedGen",
    "AnonForbidden",
    "BadRequest",
    "BadResponse",
    "DuplicateGen",
    "Forbidden",
    "HordeClient",
    "HordeError",
    "HordeUnreachable",
    "Idempotency",
    "InvalidAPIKey",
    "JobSubmitted",
    "KudosUpfront",
    "Locked",
    "MaintenanceMode",
    "NotFound",
    "RateLimited",
    "RequestExpired",
    "RequestRejected",
    "RetryPolicy",
    "ServerError",
    "TokenOverflow",
    "TooManyPrompts",
    "TooManyRequests",
    "ValidationFailed",
    "WorkerMaintenance",
    "WrongCredentials",
    "api_root",
]
