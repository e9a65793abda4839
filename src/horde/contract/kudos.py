"""`/kudos/transfer` and `/kudos/award` bodies (SEMANTICS.md 1.7; the swagger gives the inputs inline).

`amount` is a strict integer, as the reference's schema validation has it: `1.5`, `"100"` and `true`
are validation errors (400 without rc). Its sign and size are the service's rcs.
"""

from pydantic import StrictInt

from horde.contract.common import HordeModel


class KudosTransferInput(HordeModel):
    """POST /kudos/transfer body: `username` is an alias `name#id` (or a shared-key id)."""

    username: str = ""
    amount: StrictInt = 100


class KudosAwardInput(HordeModel):
    """POST /kudos/award body."""

    username: str = ""
    amount: StrictInt = 100


class KudosTransferred(HordeModel):
    transferred: float


class KudosAwarded(HordeModel):
    awarded: float
