"""`/operations/*` (IP timeouts, moderators only) and the body of `PUT /status/modes`."""

from typing import Annotated

from pydantic import Field

from horde.contract.common import HordeModel, Omittable

IPAddress = Annotated[str, Field(min_length=7, max_length=40)]


class IPTimeout(HordeModel):
    """One IP or CIDR in timeout and the seconds it has left."""

    ipaddr: IPAddress
    seconds: int


class AddTimeoutIPInput(HordeModel):
    ipaddr: IPAddress
    hours: Annotated[int, Field(ge=1, le=720)]


class DeleteTimeoutIPInput(HordeModel):
    ipaddr: IPAddress


class AddWorkerTimeout(HordeModel):
    days: Annotated[int, Field(ge=1, le=30)]


class HordeModesInput(HordeModel):
    """PUT /status/modes: the modes to change (absent ones stay as they are)."""

    maintenance_mode: Omittable[bool] = None
    invite_only_mode: Omittable[bool] = None
    raid_mode: Omittable[bool] = None
