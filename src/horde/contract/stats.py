"""Statistics bodies: `/stats/img/*`, `/stats/text/*` (SEMANTICS.md 1.8)."""

from pydantic import Field

from horde.contract.common import HordeModel


class SinglePeriodImgStat(HordeModel):
    images: int = 0
    ps: int = 0  # pixelsteps


class SinglePeriodTxtStat(HordeModel):
    requests: int = 0
    tokens: int = 0


class StatsImgTotals(HordeModel):
    minute: SinglePeriodImgStat
    hour: SinglePeriodImgStat
    day: SinglePeriodImgStat
    month: SinglePeriodImgStat
    total: SinglePeriodImgStat


class StatsTxtTotals(HordeModel):
    minute: SinglePeriodTxtStat
    hour: SinglePeriodTxtStat
    day: SinglePeriodTxtStat
    month: SinglePeriodTxtStat
    total: SinglePeriodTxtStat


class ImgModelStats(HordeModel):
    """Jobs done per model in the past day, the past month and ever."""

    day: dict[str, int] = Field(default_factory=dict)
    month: dict[str, int] = Field(default_factory=dict)
    total: dict[str, int] = Field(default_factory=dict)


class TxtModelStats(ImgModelStats):
    pass
