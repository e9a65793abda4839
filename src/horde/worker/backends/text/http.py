"""Shared HTTP plumbing for the remote text backends: one httpx client, errors mapped to job errors.

A refused or dropped connection becomes :class:`BackendUnreachable`, a server that does not answer in
time :class:`BackendTimeout`, an error status or a body that is not the expected JSON
:class:`BadBackendResponse`; all three are :class:`JobFailed`, so the worker faults the job.
"""

from __future__ import annotations

from typing import Any

import httpx

from horde.worker.backends.base import (
    BackendTimeout,
    BackendUnavailable,
    BackendUnreachable,
    BadBackendResponse,
    JobFailed,
)

__all__ = ["RemoteServer"]


class RemoteServer:
    """An inference server at ``base_url``, spoken to as JSON over HTTP."""

    def __init__(
        self,
        backend: str,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        connect_timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.backend = backend
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request and return the decoded JSON body, or raise a :class:`JobFailed`."""
        where = f"{self.backend} at {self.base_url}{path}"
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise BackendTimeout(f"{where} did not answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise BackendUnreachable(f"{where} is unreachable: {exc or type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise BadBackendResponse(f"{where} answered {response.status_code}: {response.text[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise BadBackendResponse(f"{where} answered something that is not JSON") from exc

    async def probe(self, path: str) -> Any:
        """GET ``path`` at load time; any failure becomes :class:`BackendUnavailable`."""
        try:
            return await self.request("GET", path)
        except JobFailed as exc:
            raise BackendUnavailable(self.backend, str(exc)) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
