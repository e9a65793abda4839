"""Who may call what: one table, one row per route (ADR 0009).

A row says how the route reads the `apikey` header (`Key`), who passes the door (roles known from the
key alone, checked by the `Caller`/`Viewer` dependencies before the handler runs), who may act on the
object once the service has loaded it (`owner`: roles that need the object, such as its owner), and,
for routes that change several fields, who may set each group of fields. Every refusal is a `Denial`:
the rc (its HTTP status follows from the rc) and the message. Nothing else in the server decides
access: the dependencies and the services call `admit` with their route's row.

Callers without a key (`Role.NONE`) on a route whose key is required get the validation error of a
missing header (400), and an unknown key gets 401 InvalidAPIKey; both before the door.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.users.principal import Principal


class Key(StrEnum):
    NONE = "none"  # the route never reads the key (a bad key does not matter)
    OPTIONAL = "optional"  # a key, when sent, must be valid; it raises the detail level
    REQUIRED = "required"  # the header is required and must be valid (the anonymous key counts)
    LOOKUP = "lookup"  # the key is what the route looks up (an unknown one is that route's 404)


class Role(StrEnum):
    NONE = "none"  # no key sent
    ANONYMOUS = "anonymous"  # the shared anonymous key 0000000000
    USER = "user"  # any registered (non-anonymous) user
    OWNER = "owner"  # the user the object is (a user record) or who made it
    WORKER_OWNER = "worker_owner"  # the owner of the worker the object is or that holds the job
    TRUSTED = "trusted"
    CUSTOMIZER = "customizer"
    MODERATOR = "moderator"
    ADMIN = "admin"  # an alias listed in HORDE_ADMINS
    FIRST_USER = "first_user"  # the horde's user id 1 (the reference's only awarder)
    SERVICE = "service"


FIRST_USER_ID = 1
OBJECT_ROLES = frozenset({Role.OWNER, Role.WORKER_OWNER})
EVERYONE = frozenset(Role)
ANY_KEY = EVERYONE - {Role.NONE}
REGISTERED = ANY_KEY - {Role.ANONYMOUS}
MODERATORS = frozenset({Role.MODERATOR, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Denial:
    """What a caller outside a check gets; `message` may name `{actor}` and the object's fields."""

    rc: RC
    message: str

    def error(self, actor: Principal | None, context: Mapping[str, object]) -> HordeError:
        alias = actor.alias if actor is not None else "anonymous"
        return HordeError(self.rc, self.message.format(actor=alias, **context))


@dataclass(frozen=True, slots=True)
class Check:
    allow: frozenset[Role]
    deny: Denial


@dataclass(frozen=True, slots=True)
class Rule:
    key: Key
    door: Check | None = None  # roles from the key alone, checked before the handler
    owner: Check | None = None  # checked by the service once the object is loaded
    fields: tuple[tuple[frozenset[str], Check], ...] = field(default=())  # in the order they are checked
    note: str = ""
    deleted_pass: bool = False  # a soft-deleted user's key passes (else 403 DeletedUser before the door)


def roles_of(actor: Principal | None, *, owns: bool = False) -> frozenset[Role]:
    """The roles a caller holds; `owns`: the caller owns the object at hand."""
    if actor is None:
        return frozenset({Role.NONE})
    if actor.is_anon:
        return frozenset({Role.ANONYMOUS})
    roles = {Role.USER}
    flags = (
        (actor.is_trusted, Role.TRUSTED), (actor.customizer, Role.CUSTOMIZER), (actor.service, Role.SERVICE),
        (actor.moderator, Role.MODERATOR), (actor.admin, Role.ADMIN), (owns, Role.OWNER),
        (owns, Role.WORKER_OWNER), (actor.id == FIRST_USER_ID, Role.FIRST_USER),
    )  # fmt: skip
    roles.update(role for held, role in flags if held)
    return frozenset(roles)


def _check(check: Check, actor: Principal | None, owns: bool, context: Mapping[str, object]) -> None:
    if not check.allow & roles_of(actor, owns=owns):
        raise check.deny.error(actor, context)


def admit_door(rule: Rule, actor: Principal | None) -> None:
    """Raise the row's denial unless the caller passes the door (no object needed)."""
    if rule.door is not None:
        _check(rule.door, actor, False, {})


def admit(
    rule: Rule,
    actor: Principal | None,
    *,
    owner_id: int | None = None,
    fields: Collection[str] = (),
    **context: object,
) -> None:
    """Raise the row's denial unless the caller may act on the object (owned by `owner_id`) and set
    every field in `fields`; `context` fills the denial's message."""
    owns = actor is not None and owner_id is not None and actor.id == owner_id and not actor.is_anon
    if rule.owner is not None:
        _check(rule.owner, actor, owns, context)
    present = set(fields)
    for names, check in rule.fields:
        if names & present:
            _check(check, actor, owns, context)


# --- the table ---------------------------------------------------------------------------------------

V2 = "/api/v2"
PUBLIC = Rule(Key.NONE)
OPTIONAL = Rule(Key.OPTIONAL)
ANY_KEY_RULE = Rule(Key.REQUIRED)

_NOT_WORKER_OWNER = Denial(RC.NotOwner, "{actor} is not the owner of worker '{name}'")
_WORKER_OWNER_OR_MOD = Check(frozenset({Role.WORKER_OWNER}) | MODERATORS, _NOT_WORKER_OWNER)
_NOT_MODERATOR = Denial(RC.NotModerator, "Only moderators may set these fields")
_NOT_MODERATOR_COMMENT = Denial(RC.NotModerator, "Only moderators may set admin_comment")
_NOT_SELF_OR_MODERATOR = Denial(RC.NotModerator, "Only the user themself or a moderator may change this")
ADMINS = frozenset({Role.ADMIN})
USER_ROLE_FIELDS = frozenset(
    {"concurrency", "worker_invited", "trusted", "flagged", "customizer", "vpn", "service", "education",
     "special", "reset_suspicion"}
)  # fmt: skip
USER_OWN_FIELDS = frozenset({"public_workers", "username", "contact", "generate_proxy_passkey", "undelete"})

POP = Rule(
    Key.REQUIRED,
    door=Check(REGISTERED, Denial(RC.AnonForbiddenWorker, "Anonymous users cannot run workers")),
    owner=Check(
        frozenset({Role.WORKER_OWNER}),
        Denial(RC.WrongCredentials, "Wrong credentials to submit as this worker"),
    ),
    note="owner: a name already taken must be the caller's own worker",
)
SUBMIT = Rule(
    Key.REQUIRED,
    owner=Check(
        frozenset({Role.WORKER_OWNER}),
        Denial(RC.WrongCredentials, "Wrong credentials to submit as this worker"),
    ),
    note="owner: the owner of the worker holding the job (checked in jobs/results.py)",
)
MODIFY_WORKER = Rule(
    Key.REQUIRED,
    fields=(
        (frozenset({"maintenance", "info", "name"}), _WORKER_OWNER_OR_MOD),
        (
            frozenset({"paused"}),
            Check(MODERATORS, Denial(RC.NotModerator, "Only moderators can pause workers")),
        ),
        (frozenset({"team"}), _WORKER_OWNER_OR_MOD),
    ),
)
DELETE_WORKER = Rule(Key.REQUIRED, owner=_WORKER_OWNER_OR_MOD)
MODIFY_USER = Rule(
    Key.REQUIRED,
    owner=Check(REGISTERED, Denial(RC.AnonForbiddenUserMod, "Anonymous users cannot modify users")),
    fields=(
        (
            frozenset({"moderator", "kudos", "monthly_kudos", "usage_multiplier"}),
            Check(ADMINS, Denial(RC.NotAdmin, "Only admins may set these fields")),
        ),
        (USER_ROLE_FIELDS, Check(MODERATORS, _NOT_MODERATOR)),
        (frozenset({"admin_comment"}), Check(MODERATORS, _NOT_MODERATOR_COMMENT)),
        (USER_OWN_FIELDS, Check(frozenset({Role.OWNER}) | MODERATORS, _NOT_SELF_OR_MODERATOR)),
    ),
    note="a deleted user's key passes to undelete itself, nothing else (users/changes.py)",
    deleted_pass=True,
)
DELETE_USER = Rule(
    Key.REQUIRED,
    owner=Check(
        frozenset({Role.OWNER}) | MODERATORS,
        Denial(RC.NotUserOrMod, "Only the user themself or a moderator may delete a user"),
    ),
    note="a deleted user's key passes: its second call wipes it once inactive 30 days (users/changes.py)",
    deleted_pass=True,
)
TRANSFER = Rule(
    Key.REQUIRED,
    door=Check(
        REGISTERED, Denial(RC.KudosTransferFromAnon, "You cannot transfer Kudos from Anonymous, smart-ass.")
    ),
    note="the sender; who may receive is the service's (kudos/transfers.py)",
)
AWARD = Rule(
    Key.REQUIRED,
    door=Check(
        frozenset({Role.FIRST_USER, Role.ADMIN}),
        Denial(RC.NotAllowedAwards, "This user is not allowed to Award Kudos"),
    ),
    note="the reference: user id 1 only; this horde also lets the HORDE_ADMINS aliases award (ADR 0015)",
)
CREATE_TEAM = Rule(
    Key.REQUIRED,
    door=Check(
        frozenset({Role.TRUSTED}) | MODERATORS,
        Denial(RC.UntrustedTeamCreation, "Only trusted users can create teams"),
    ),
)
TEAM_DETAILS = Rule(
    Key.OPTIONAL,
    door=Check(
        frozenset({Role.NONE}) | MODERATORS,
        Denial(RC.NotModerator, "Only moderators may see a team's details with a key"),
    ),
    note="the reference's quirk (SEMANTICS 1.6): without a key anyone may, with one only a moderator",
)
CHANGE_TEAM = Rule(
    Key.REQUIRED,
    owner=Check(
        frozenset({Role.OWNER}) | MODERATORS,
        Denial(RC.NotOwner, "{actor} is not the creator of team '{name}'"),
    ),
)
CREATE_SHARED_KEY = Rule(
    Key.REQUIRED,
    door=Check(REGISTERED, Denial(RC.AnonForbidden, "Anonymous users cannot create shared keys")),
    note="at most 3 keys per user, 10 trusted, 1000 education (sharedkeys/service.py)",
)
CHANGE_SHARED_KEY = Rule(
    Key.REQUIRED,
    owner=Check(frozenset({Role.OWNER}), Denial(RC.NotOwner, "{actor} does not own this shared key")),
)
SPEND_RULE = Rule(
    Key.REQUIRED, note="a shared key is accepted as the key: its owner is the caller (ADR 0021)"
)
_NO_ANON_MESSAGES = Check(REGISTERED, Denial(RC.AnonForbidden, "Anonymous users cannot use worker messages"))
LIST_MESSAGES = Rule(
    Key.REQUIRED,
    door=_NO_ANON_MESSAGES,
    fields=(
        (
            frozenset({"user_id"}),
            Check(
                frozenset({Role.OWNER}) | MODERATORS,
                Denial(RC.NotModerator, "Only moderators may list the messages of other users"),
            ),
        ),
    ),
    note="without a user_id a non-moderator sees the messages to their workers and the broadcasts",
)
CREATE_MESSAGE = Rule(
    Key.REQUIRED,
    door=_NO_ANON_MESSAGES,
    owner=Check(
        frozenset({Role.WORKER_OWNER}) | MODERATORS,
        Denial(RC.MessagesOnlyOwnWorkers, "Only moderators may message other users' workers or all workers"),
    ),
    note="owner: the owner of the worker messaged (a broadcast has none)",
)
DELETE_MESSAGE = Rule(
    Key.REQUIRED,
    door=_NO_ANON_MESSAGES,
    owner=Check(
        frozenset({Role.OWNER}) | MODERATORS, Denial(RC.NotOwner, "{actor} did not write this message")
    ),
    note="owner: the message's author",
)
MODES = Rule(
    Key.OPTIONAL,
    door=Check(
        frozenset({Role.NONE}) | MODERATORS,
        Denial(RC.NotModerator, "Only moderators may see the horde modes with a key"),
    ),
)

PUT_MODES = Rule(
    Key.REQUIRED,
    fields=(
        (
            frozenset({"maintenance_mode"}),
            Check(ADMINS, Denial(RC.NotAdmin, "Only admins may set maintenance_mode")),
        ),
        (
            frozenset({"invite_only_mode", "raid_mode"}),
            Check(MODERATORS, Denial(RC.NotModerator, "Only moderators may set these modes")),
        ),
    ),
)
MODERATOR_ONLY = Rule(
    Key.REQUIRED,
    door=Check(MODERATORS, Denial(RC.NotModerator, "Only moderators can do this")),
)

_NO_ANON_STYLES = Check(REGISTERED, Denial(RC.StylesAnonForbidden, "Anonymous users cannot own styles"))
# the reference refuses someone else's style or collection with a Forbidden whose rc ("StyleMismatch")
# sits in the wrong argument slot: clients see rc Forbidden (SEMANTICS 2)
_NOT_STYLE_OWNER = Denial(RC.Forbidden, "{actor} does not own '{name}'")
CREATE_STYLE = Rule(
    Key.REQUIRED,
    door=_NO_ANON_STYLES,
    owner=Check(
        frozenset({Role.CUSTOMIZER, Role.TRUSTED}) | MODERATORS,
        Denial(RC.StylesRequiresCustomizer, "Only customizers and trusted users can create styles"),
    ),
    note="owner: checked by the service with no object (the caller's roles after the anonymous door)",
)
CHANGE_STYLE = Rule(Key.REQUIRED, owner=Check(frozenset({Role.OWNER}), _NOT_STYLE_OWNER))
DELETE_STYLE = Rule(Key.REQUIRED, owner=Check(frozenset({Role.OWNER}) | MODERATORS, _NOT_STYLE_OWNER))
STYLE_EXAMPLE = DELETE_STYLE
CREATE_COLLECTION = Rule(Key.REQUIRED, door=_NO_ANON_STYLES)
CHANGE_COLLECTION = CHANGE_STYLE
DELETE_COLLECTION = DELETE_STYLE

# "METHOD path" -> row. A new route adds one line here; the app refuses to start without it.
ACCESS: dict[str, Rule] = {
    f"POST {V2}/generate/async": SPEND_RULE,
    f"GET {V2}/generate/check/{{id}}": PUBLIC,
    f"GET {V2}/generate/status/{{id}}": PUBLIC,
    f"DELETE {V2}/generate/status/{{id}}": PUBLIC,
    f"POST {V2}/generate/pop": POP,
    f"POST {V2}/generate/submit": SUBMIT,
    f"POST {V2}/generate/rate/{{id}}": PUBLIC,
    f"POST {V2}/generate/text/async": SPEND_RULE,
    f"GET {V2}/generate/text/status/{{id}}": PUBLIC,
    f"DELETE {V2}/generate/text/status/{{id}}": PUBLIC,
    f"POST {V2}/generate/text/pop": POP,
    f"POST {V2}/generate/text/submit": SUBMIT,
    f"POST {V2}/interrogate/async": ANY_KEY_RULE,
    f"GET {V2}/interrogate/status/{{id}}": PUBLIC,
    f"DELETE {V2}/interrogate/status/{{id}}": PUBLIC,
    f"POST {V2}/interrogate/pop": POP,
    f"POST {V2}/interrogate/submit": SUBMIT,
    f"GET {V2}/workers": OPTIONAL,
    f"GET {V2}/workers/name/{{worker_name}}": OPTIONAL,
    f"GET {V2}/workers/messages": LIST_MESSAGES,
    f"POST {V2}/workers/messages": CREATE_MESSAGE,
    f"GET {V2}/workers/messages/{{message_id}}": PUBLIC,
    f"DELETE {V2}/workers/messages/{{message_id}}": DELETE_MESSAGE,
    f"GET {V2}/workers/{{worker_id}}": OPTIONAL,
    f"PUT {V2}/workers/{{worker_id}}": MODIFY_WORKER,
    f"DELETE {V2}/workers/{{worker_id}}": DELETE_WORKER,
    f"GET {V2}/find_user": Rule(
        Key.LOOKUP, note="a missing or unknown key is 404 UserNotFound; a shared key finds its owner"
    ),
    f"GET {V2}/users": PUBLIC,
    f"GET {V2}/users/{{user_id}}": OPTIONAL,
    f"PUT {V2}/users/{{user_id}}": MODIFY_USER,
    f"DELETE {V2}/users/{{user_id}}": DELETE_USER,
    f"POST {V2}/kudos/transfer": TRANSFER,
    f"POST {V2}/kudos/award": AWARD,
    f"GET {V2}/teams": PUBLIC,
    f"POST {V2}/teams": CREATE_TEAM,
    f"GET {V2}/teams/{{team_id}}": TEAM_DETAILS,
    f"PATCH {V2}/teams/{{team_id}}": CHANGE_TEAM,
    f"DELETE {V2}/teams/{{team_id}}": CHANGE_TEAM,
    f"PUT {V2}/sharedkeys": CREATE_SHARED_KEY,
    f"GET {V2}/sharedkeys/{{sharedkey_id}}": Rule(Key.NONE, note="the id is the secret: whoever holds it"),
    f"PATCH {V2}/sharedkeys/{{sharedkey_id}}": CHANGE_SHARED_KEY,
    f"DELETE {V2}/sharedkeys/{{sharedkey_id}}": CHANGE_SHARED_KEY,
    f"GET {V2}/stats/img/totals": PUBLIC,
    f"GET {V2}/stats/img/models": PUBLIC,
    f"GET {V2}/stats/text/totals": PUBLIC,
    f"GET {V2}/stats/text/models": PUBLIC,
    **{
        row: rule
        for kind in ("image", "text")
        for row, rule in (
            (f"GET {V2}/styles/{kind}", PUBLIC),
            (f"POST {V2}/styles/{kind}", CREATE_STYLE),
            (f"GET {V2}/styles/{kind}/{{style_id}}", PUBLIC),
            (f"PATCH {V2}/styles/{kind}/{{style_id}}", CHANGE_STYLE),
            (f"DELETE {V2}/styles/{kind}/{{style_id}}", DELETE_STYLE),
            (f"GET {V2}/styles/{kind}_by_name/{{style_name}}", PUBLIC),
        )
    },
    f"POST {V2}/styles/image/{{style_id}}/example": STYLE_EXAMPLE,
    f"PATCH {V2}/styles/image/{{style_id}}/example/{{example_id}}": STYLE_EXAMPLE,
    f"DELETE {V2}/styles/image/{{style_id}}/example/{{example_id}}": STYLE_EXAMPLE,
    f"GET {V2}/collections": PUBLIC,
    f"POST {V2}/collections": CREATE_COLLECTION,
    f"GET {V2}/collections/{{collection_id}}": PUBLIC,
    f"PATCH {V2}/collections/{{collection_id}}": CHANGE_COLLECTION,
    f"DELETE {V2}/collections/{{collection_id}}": DELETE_COLLECTION,
    f"GET {V2}/collection_by_name/{{collection_name}}": PUBLIC,
    f"GET {V2}/filters": MODERATOR_ONLY,
    f"PUT {V2}/filters": MODERATOR_ONLY,
    f"POST {V2}/filters": MODERATOR_ONLY,
    f"GET {V2}/filters/regex": MODERATOR_ONLY,
    f"GET {V2}/filters/{{filter_id}}": MODERATOR_ONLY,
    f"PATCH {V2}/filters/{{filter_id}}": MODERATOR_ONLY,
    f"DELETE {V2}/filters/{{filter_id}}": MODERATOR_ONLY,
    f"GET {V2}/problem_jobs": Rule(MODERATOR_ONLY.key, MODERATOR_ONLY.door, note="this horde's extension"),
    f"GET {V2}/status/heartbeat": PUBLIC,
    # pushed status (an extension): as the status polls, no key
    f"GET {V2}/generate/status/{{id}}/events": PUBLIC,
    f"GET {V2}/generate/text/status/{{id}}/events": PUBLIC,
    f"GET {V2}/interrogate/status/{{id}}/events": PUBLIC,
    # the OpenAI-compatible API (an extension): the key as `Authorization: Bearer`, or `apikey`
    "GET /v1/models": PUBLIC,
    "POST /v1/completions": ANY_KEY_RULE,
    "POST /v1/chat/completions": ANY_KEY_RULE,
    "POST /v1/images/generations": ANY_KEY_RULE,
    f"GET {V2}/status/models": PUBLIC,
    f"GET {V2}/status/models/{{model_name:path}}": PUBLIC,
    f"GET {V2}/status/performance": PUBLIC,
    f"GET {V2}/status/modes": MODES,
    f"PUT {V2}/status/modes": PUT_MODES,
    f"GET {V2}/status/news": PUBLIC,
    f"GET {V2}/documents/terms": PUBLIC,
    f"GET {V2}/documents/privacy": PUBLIC,
    f"GET {V2}/documents/sponsors": PUBLIC,
    f"GET {V2}/operations/ipaddr": MODERATOR_ONLY,
    f"POST {V2}/operations/ipaddr": MODERATOR_ONLY,
    f"DELETE {V2}/operations/ipaddr": MODERATOR_ONLY,
    f"GET {V2}/operations/ipaddr/{{ipaddr}}": MODERATOR_ONLY,
    f"PUT {V2}/operations/block_worker_ipaddr/{{worker_id}}": MODERATOR_ONLY,
    f"DELETE {V2}/operations/block_worker_ipaddr/{{worker_id}}": MODERATOR_ONLY,
    f"POST {V2}/dev/test-user": Rule(Key.NONE, note="only with HORDE_TEST_APIKEYS=1, only from loopback"),
    "GET /.well-known/serviceinfo": PUBLIC,
    "GET /metrics": Rule(Key.NONE, note="keep it off the public side at the load balancer (README)"),
    "GET /objects/{key}": Rule(Key.NONE, note="the URL's signature is the credential"),
    "PUT /objects/{key}": Rule(Key.NONE, note="the URL's signature is the credential"),
    "GET /register": PUBLIC,
    "POST /register": PUBLIC,
    "GET /api/swagger.json": PUBLIC,
    **{f"{method} {path}": PUBLIC for method in ("GET", "HEAD")
       for path in ("/api/openapi.json", "/api/", "/docs/oauth2-redirect", "/redoc")},  # FastAPI's docs
}  # fmt: skip


def rule(method: str, path: str) -> Rule:
    """The row of a route (a KeyError names a route the table lacks)."""
    return ACCESS[f"{method} {path}"]
