"""The route class of every API router: request bodies are decoded as strict JSON.

Python's `json` accepts `NaN`, `Infinity` and numbers like `1e999` (infinite once parsed); stored in
a free-form payload they later break the pop that serialises them (for every request batched into
it). They are refused here, where every body is decoded, as a validation error (400).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

NON_FINITE = "NaN and Infinity are not valid JSON numbers"


def _refuse(_token: str) -> Any:
    raise json.JSONDecodeError(NON_FINITE, "", 0)


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        _refuse(token)
    return value


def loads_finite(data: bytes | str) -> Any:
    """`json.loads` without non-finite numbers (JSONDecodeError for them)."""
    return json.loads(data, parse_constant=_refuse, parse_float=_finite)


class FiniteJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_finite(await self.body())
        return self._json


class HordeRoute(APIRoute):
    """An APIRoute whose handler decodes bodies with `loads_finite`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def finite_json(request: Request) -> Response:
            return await handler(FiniteJSONRequest(request.scope, request.receive))

        return finite_json
