"""The rc vocabulary: exact strings, one status each, consistent with the swagger's enum."""

from __future__ import annotations

import pytest

from horde.contract.rc import DOCUMENTED_BUT_NOT_EMITTED, KUDOS_TRANSFER_RCS, RC, STATUS, rc_status

from .swagger import definition, requires_swagger

# Live rcs (SEMANTICS §2) that the swagger's RequestError enum lacks.
NOT_IN_SWAGGER_ENUM = {
    "ControlNetInpaintingMismatch",
    "ControlNetMismatch.",
    "InvalidRemix",  # the swagger says InvalidRemixModel
    "TooManyExtraSourceImages.",
    "MoreThanMinExtraSourceImage.",
    "InvalidExtraSourceImages.",
    "InvalidExtraTexts.",
    "MissingExtraTexts.",
    "InvalidKudosTransferAmount",
    "InvalidTargetUsername",
    "IdempotencyKeyConflict",
    "AnonForbiddenUser",
    "TooManyWorkers",
    "TooManyWorkersTrusted",
    "BannedClientAgent",  # the swagger says BadClientAgent
    "StyleNotFound",
    "CollectionNotFound",
    "WorkermessageNotFound",
    "Image styleNotFound",
}


def test_values_are_unique() -> None:
    assert len(RC.__members__) == len(list(RC))


def test_every_rc_has_a_status() -> None:
    assert set(STATUS) == set(RC)
    assert set(STATUS.values()) == {400, 401, 403, 404, 410, 423, 429}


@pytest.mark.parametrize(
    ("rc", "status"),
    [
        ("MaintenanceMode", 400),
        ("TooManyExtraSourceImages.", 400),
        ("ControlNetMismatch.", 400),
        ("KudosTransferNotEnough", 400),
        ("InvalidAPIKey", 401),
        ("KudosUpfront", 403),
        ("AnonForbiddenWorker", 403),
        ("NotAllowedAwards", 403),
        ("WorkerNotFound", 404),
        ("Image styleNotFound", 404),
        ("RequestExpired", 410),
        ("Locked", 423),
        ("TooManyPrompts", 429),
    ],
)
def test_status(rc: str, status: int) -> None:
    assert rc_status(rc) == status
    assert rc_status(RC(rc)) == status


def test_unknown_rcs() -> None:
    assert rc_status("SomethingNotFound") == 404
    assert rc_status("SomethingElse") == 400


def test_quirky_strings_are_kept() -> None:
    assert RC.TooManyExtraSourceImages == "TooManyExtraSourceImages."
    assert RC.ImageStyleNotFound == "Image styleNotFound"
    assert RC.WorkermessageNotFound == "WorkermessageNotFound"


def test_transfer_rcs_and_never_emitted() -> None:
    assert {STATUS[rc] for rc in KUDOS_TRANSFER_RCS} <= {400, 403}
    assert not DOCUMENTED_BUT_NOT_EMITTED & {rc.value for rc in RC}


@requires_swagger
def test_rcs_match_the_swagger_enum_except_listed() -> None:
    enum = set(definition("RequestError")["properties"]["rc"]["enum"])
    assert {rc.value for rc in RC} - enum == NOT_IN_SWAGGER_ENUM
