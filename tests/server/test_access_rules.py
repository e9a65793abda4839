"""The access table's checks in-process (`roles_of`, `admit_door`, `admit`): who holds which role and
which denial each caller gets, on rules written here so the expectations do not come from the table.

The e2e matrix (tests/e2e/test_access_matrix.py) calls every route as every role over HTTP; it runs a
server process, so mutation testing (scripts/mutate.py) cannot see its verdicts: this file can.
"""

from __future__ import annotations

import dataclasses

import pytest

from horde.contract.rc import RC
from horde.server import access
from horde.server.access import Check, Denial, Key, Role, Rule
from horde.server.errors import HordeError
from horde.server.users.principal import Principal

PLAIN = Principal(
    id=7, username="alice", oauth_id="o", concurrency=30, worker_invited=0, moderator=False, trusted=False,
    flagged=False, customizer=False, service=False, education=False, vpn=False, special=False,
    deleted=False, admin=False,
)  # fmt: skip
ANON = dataclasses.replace(PLAIN, id=0, username="Anonymous")
FIRST = dataclasses.replace(PLAIN, id=1, username="root")


def _with(**flags: bool) -> Principal:
    return dataclasses.replace(PLAIN, **flags)


@pytest.mark.parametrize(
    ("actor", "owns", "expected"),
    [
        (None, False, {Role.NONE}),
        (None, True, {Role.NONE}),
        (ANON, False, {Role.ANONYMOUS}),
        (ANON, True, {Role.ANONYMOUS}),  # the anonymous user never owns anything
        (PLAIN, False, {Role.USER}),
        (PLAIN, True, {Role.USER, Role.OWNER, Role.WORKER_OWNER}),
        (_with(trusted=True), False, {Role.USER, Role.TRUSTED}),
        (_with(moderator=True), False, {Role.USER, Role.MODERATOR, Role.TRUSTED}),  # moderators are trusted
        (_with(customizer=True), False, {Role.USER, Role.CUSTOMIZER}),
        (_with(service=True), False, {Role.USER, Role.SERVICE}),
        (_with(admin=True), False, {Role.USER, Role.ADMIN}),
        (FIRST, False, {Role.USER, Role.FIRST_USER}),
        # flags that are not roles give nothing
        (_with(flagged=True, vpn=True, education=True, special=True), False, {Role.USER}),
    ],
)
def test_roles_of(actor: Principal | None, owns: bool, expected: set[Role]) -> None:
    assert access.roles_of(actor, owns=owns) == frozenset(expected)


DOOR = Rule(
    Key.REQUIRED,
    door=Check(frozenset({Role.TRUSTED, Role.ADMIN}), Denial(RC.NotTrusted, "{actor} is not trusted")),
)


def _denied(call: object) -> tuple[str, str, int]:
    assert isinstance(call, HordeError)
    return call.rc, call.message, call.status_code


def test_admit_door() -> None:
    access.admit_door(DOOR, _with(trusted=True))
    access.admit_door(DOOR, _with(admin=True))
    access.admit_door(Rule(Key.REQUIRED), None)  # a rule without a door lets everyone through
    for actor, alias in ((PLAIN, "alice#7"), (ANON, "Anonymous#0"), (None, "anonymous")):
        with pytest.raises(HordeError) as refused:
            access.admit_door(DOOR, actor)
        assert _denied(refused.value) == ("NotTrusted", f"{alias} is not trusted", 403)


OWNED = Rule(
    Key.REQUIRED,
    owner=Check(
        frozenset({Role.WORKER_OWNER, Role.MODERATOR}),
        Denial(RC.NotOwner, "{actor} is not the owner of worker '{name}'"),
    ),
    fields=(
        (frozenset({"paused", "info"}), Check(frozenset({Role.ADMIN}), Denial(RC.NotAdmin, "admins only"))),
        (
            frozenset({"team"}),
            Check(frozenset({Role.CUSTOMIZER}), Denial(RC.NotModerator, "customizers only")),
        ),
    ),
)


def test_admit_the_owner() -> None:
    access.admit(OWNED, PLAIN, owner_id=7, name="w")
    access.admit(OWNED, _with(moderator=True), owner_id=8, name="w")
    # someone else's object, no owner at all, or the anonymous user "owning" user 0's object
    for actor, owner_id in ((PLAIN, 8), (PLAIN, None), (ANON, 0), (None, 7)):
        with pytest.raises(HordeError) as refused:
            access.admit(OWNED, actor, owner_id=owner_id, name="w")
        alias = actor.alias if actor is not None else "anonymous"
        assert _denied(refused.value) == ("NotOwner", f"{alias} is not the owner of worker 'w'", 403)


def test_admit_fields_in_order() -> None:
    admin = _with(admin=True, moderator=True)
    access.admit(OWNED, admin, owner_id=1, fields=["info"], name="w")
    access.admit(OWNED, PLAIN, owner_id=7, fields=["name"], name="w")  # a field no group names
    with pytest.raises(HordeError) as refused:
        access.admit(OWNED, PLAIN, owner_id=7, fields={"info"}, name="w")
    assert _denied(refused.value) == ("NotAdmin", "admins only", 403)
    # the first group that refuses is the answer: team alone is refused as a customizer's field
    with pytest.raises(HordeError) as refused:
        access.admit(OWNED, admin, owner_id=1, fields=("team",), name="w")
    assert _denied(refused.value)[:2] == ("NotModerator", "customizers only")
    with pytest.raises(HordeError) as refused:
        access.admit(OWNED, PLAIN, owner_id=7, fields=("team", "paused"), name="w")
    assert _denied(refused.value)[:2] == ("NotAdmin", "admins only")
    # ownership counts for the field checks too
    rule = Rule(Key.REQUIRED, fields=((frozenset({"x"}), Check(frozenset({Role.OWNER}), DOOR.door.deny)),))  # type: ignore[union-attr]
    access.admit(rule, PLAIN, owner_id=7, fields=["x"])
    with pytest.raises(HordeError):
        access.admit(rule, PLAIN, owner_id=8, fields=["x"])


def test_rule_names_a_route() -> None:
    assert access.rule("GET", "/api/v2/status/heartbeat") is access.ACCESS["GET /api/v2/status/heartbeat"]
    with pytest.raises(KeyError):
        access.rule("GET", "/api/v2/nowhere")


def test_nobody_owns_by_default() -> None:
    assert access.roles_of(PLAIN) == frozenset({Role.USER})


def test_the_door_knows_no_owner() -> None:
    """The door runs before any object is loaded: an owner-only door refuses even the object's owner."""
    door = Rule(Key.REQUIRED, door=Check(frozenset({Role.OWNER}), Denial(RC.NotOwner, "owners only")))
    with pytest.raises(HordeError) as refused:
        access.admit_door(door, PLAIN)
    assert _denied(refused.value) == ("NotOwner", "owners only", 403)
