"""Statistics as the API shows them (SEMANTICS.md 1.8), read from the folded buckets (ADR 0021).

Invariants: a read sums at most one window's buckets (60 minutes, 24 hours or 31 days per model) and
the all-time totals: nothing scans the history of completions. A window counts every bucket that
overlaps it, so its figures run up to one bucket ahead of the exact window; they lag completions by a
fold (a few seconds) and by this node's cache.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract import (
    ImgModelStats,
    SinglePeriodImgStat,
    SinglePeriodTxtStat,
    StatsImgTotals,
    StatsTxtTotals,
    TxtModelStats,
)
from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.state import Horde
from horde.server.stats.writes import DAY, HOUR, MINUTE, buckets, totals
from horde.server.status.service import node_answers

CACHE_TTL = 10.0  # seconds a node keeps an answer
MONTH = 30 * DAY
# window -> (its length, the grain of the buckets it is summed from)
WINDOWS = {"minute": (MINUTE, MINUTE), "hour": (HOUR, MINUTE), "day": (DAY, HOUR), "month": (MONTH, DAY)}
MODEL_STATES = ("known", "custom", "all")

Figures = tuple[int, float]  # jobs, things


async def _window(conn: AsyncConnection, kind: str, window: str, now: float) -> dict[str, Figures]:
    length, grain = WINDOWS[window]
    rows = await conn.execute(
        select(buckets.c.model, func.sum(buckets.c.count), func.sum(buckets.c.things))
        .where(buckets.c.kind == kind, buckets.c.grain == grain, buckets.c.start > now - length - grain)
        .group_by(buckets.c.model)
    )
    return {model: (int(count), float(things)) for model, count, things in rows}


async def _total(conn: AsyncConnection, kind: str) -> dict[str, Figures]:
    rows = await conn.execute(
        select(totals.c.model, totals.c.count, totals.c.things).where(totals.c.kind == kind)
    )
    return {model: (int(count), float(things)) for model, count, things in rows}


async def _periods(
    conn: AsyncConnection, kind: str, now: float, names: tuple[str, ...]
) -> dict[str, dict[str, Figures]]:
    found = {name: await _window(conn, kind, name, now) for name in names if name in WINDOWS}
    if "total" in names:
        found["total"] = await _total(conn, kind)
    return found


def _sum(per_model: dict[str, Figures]) -> Figures:
    return sum(c for c, _ in per_model.values()), sum(t for _, t in per_model.values())


_ALL = ("minute", "hour", "day", "month", "total")


async def image_totals(conn: AsyncConnection, *, horde: Horde) -> StatsImgTotals:
    """Images and pixelsteps of the past minute, hour, day, month, and ever."""

    async def compute() -> StatsImgTotals:
        periods = await _periods(conn, "image", horde.clock.now(), _ALL)
        figures = {name: _sum(per_model) for name, per_model in periods.items()}
        return StatsImgTotals.model_validate(
            {name: SinglePeriodImgStat(images=c, ps=round(t * 1e6)) for name, (c, t) in figures.items()}
        )

    return await node_answers(horde).get(("stats", "image", "totals"), CACHE_TTL, compute)


async def text_totals(conn: AsyncConnection, *, horde: Horde) -> StatsTxtTotals:
    """Text generations and tokens of the past minute, hour, day, month, and ever."""

    async def compute() -> StatsTxtTotals:
        periods = await _periods(conn, "text", horde.clock.now(), _ALL)
        figures = {name: _sum(per_model) for name, per_model in periods.items()}
        return StatsTxtTotals.model_validate(
            {name: SinglePeriodTxtStat(requests=c, tokens=round(t)) for name, (c, t) in figures.items()}
        )

    return await node_answers(horde).get(("stats", "text", "totals"), CACHE_TTL, compute)


async def _per_model(
    conn: AsyncConnection, horde: Horde, kind: str, model_state: str
) -> dict[str, dict[str, int]]:
    if model_state not in MODEL_STATES:
        raise HordeError(RC.BadRequest, "model_state must be 'known', 'custom' or 'all'")

    async def compute() -> dict[str, dict[str, int]]:
        periods = await _periods(conn, kind, horde.clock.now(), ("day", "month", "total"))
        shown: dict[str, dict[str, int]] = defaultdict(dict)
        for name, per_model in periods.items():
            shown[name] = {
                model: count
                for model, (count, _) in sorted(per_model.items())
                if model_state == "all" or horde.catalog.is_known(kind, model) == (model_state == "known")
            }
        return dict(shown)

    return await node_answers(horde).get(("stats", kind, "models", model_state), CACHE_TTL, compute)


async def image_models(conn: AsyncConnection, *, horde: Horde, model_state: str) -> ImgModelStats:
    """Images per model of the past day, month, and ever; `model_state` known, custom or all."""
    return ImgModelStats.model_validate(await _per_model(conn, horde, "image", model_state))


async def text_models(conn: AsyncConnection, *, horde: Horde, model_state: str) -> TxtModelStats:
    """Text generations per model of the past day, month, and ever."""
    return TxtModelStats.model_validate(await _per_model(conn, horde, "text", model_state))
