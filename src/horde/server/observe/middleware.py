"""The one observing middleware: a request id for every request, and its latency by route template."""

from __future__ import annotations

import time

from prometheus_client.metrics import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from horde.server.observe.logs import REQUEST_ID, REQUEST_ID_HEADER, request_id_from
from horde.server.observe.metrics import REQUEST_SECONDS

_UNMATCHED = "unmatched"  # a path no route serves: one label for all of them, not one per path
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ObserveMiddleware:
    """Outermost layer: binds the request id (logs, `X-Request-Id` answer header) and times the request.

    Latency is labelled with the route's template, so ids in paths never become series.
    """

    def __init__(self, app: ASGIApp, *, metrics: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self._series: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client sees when the app fails before answering

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            REQUEST_ID.reset(token)  # a server may run the next request in this same context
            if self.metrics:
                self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "other"
        key = (method, _template(scope), status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = REQUEST_SECONDS.labels(*key)
        series.observe(seconds)


def _template(scope: Scope) -> str:
    """The matched route's full path template (`/api/v2/generate/text/status/{id}`), or "unmatched".

    FastAPI 0.16x includes routers lazily: `scope["route"].path` lacks the router's prefix, and the
    full template is on the effective route context it leaves in the scope (test_metrics checks it).
    """
    effective = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(effective, "path", None) or getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else _UNMATCHED
