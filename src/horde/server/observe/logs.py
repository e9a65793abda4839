"""Structured logs: one JSON object per line, with the request id of the request that logged it.

The server logs through the standard library (`logging.getLogger(__name__)`); structlog's formatter
renders every record, ours and uvicorn's, so there is one format and one place that adds the id.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, WrappedLogger

REQUEST_ID: ContextVar[str | None] = ContextVar("horde_request_id", default=None)
REQUEST_ID_HEADER = b"x-request-id"
_CLIENT_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The id a load balancer or client sent (when it is a sane token), else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER and _CLIENT_ID.match(value):
            return value.decode()
    return os.urandom(16).hex()  # what uuid4().hex carries, without building a UUID (5x cheaper)


def add_request_id(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event["request_id"] = request_id
    return event


def configure_logging(fmt: Literal["json", "console"] = "json", level: int = logging.INFO) -> None:
    """Route every standard-library log record through structlog's renderer (called once per process)."""
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_request_id,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):  # let uvicorn's records reach the root handler
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
