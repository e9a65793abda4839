"""The expected answers of the access matrix (tests/e2e/test_access_matrix.py), by route and caller.

Written by hand from the Auth columns of SEMANTICS.md section 1 and the anonymous rules of section 2,
not from the server's access table: see the test's docstring.
"""

from __future__ import annotations

from typing import Any

ANON_KEY = "0000000000"
REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"
ADMIN_ALIAS = "matrix_admin#1"  # the first user a fresh database creates gets id 1

# the columns, in the order they call (the worker's owner last: its allowed submit uses the job up)
CALLERS = (
    "none", "invalid", "anonymous", "user", "owner", "trusted", "customizer", "service", "moderator",
    "admin", "worker_owner",
)  # fmt: skip
ROLE_FIELDS: dict[str, dict[str, Any]] = {
    "user": {}, "owner": {}, "trusted": {"trusted": True}, "customizer": {}, "service": {},
    "moderator": {"moderator": True}, "worker_owner": {},
}  # fmt: skip

Answer = tuple[int, str | None]
OK: Answer = (200, None)
CREATED: Answer = (201, None)
ACCEPTED: Answer = (202, None)
NO_KEY: Answer = (400, None)  # the apikey header is required: a validation error, without rc
BAD_KEY: Answer = (401, "InvalidAPIKey")


def expect(default: Answer, **overrides: Answer) -> dict[str, Answer]:
    return {caller: overrides.get(caller, default) for caller in CALLERS}


def keyed(allowed: Answer, *, others: Answer | None = None, allow: tuple[str, ...] = ()) -> dict[str, Answer]:
    """A route that requires a key: no key 400, unknown key 401; `allow` get `allowed`, the rest
    `others` (everyone keyed gets `allowed` when `allow` is empty)."""
    if not allow:
        return expect(allowed, none=NO_KEY, invalid=BAD_KEY)
    assert others is not None
    rest = {c: others for c in CALLERS if c not in allow and c not in ("none", "invalid")}
    return {**expect(allowed, none=NO_KEY, invalid=BAD_KEY), **rest}


def forbidden(rc: str) -> Answer:
    return (403, rc)


def optional_key(answer: Answer) -> dict[str, Answer]:
    """A key is optional and only raises the detail level; an unknown one is refused."""
    return expect(answer, invalid=BAD_KEY)


MODS = ("moderator", "admin")
REGISTERED = ("user", "owner", "trusted", "customizer", "service", "moderator", "admin", "worker_owner")

# Written from SEMANTICS.md section 1 (Auth columns) and section 2 (the anonymous key).
EXPECTED: dict[str, dict[str, Answer]] = {
    # 1.1 image: async needs a key (anonymous too); check, status and cancel need none
    "POST /generate/async": keyed(ACCEPTED),
    "GET /generate/check/{id}": expect(OK),
    "GET /generate/status/{id}": expect(OK),
    "DELETE /generate/status/{id}": expect(OK),
    # pop: a registered user; anonymous cannot run workers (section 2)
    "POST /generate/pop": keyed(OK, others=forbidden("AnonForbiddenWorker"), allow=REGISTERED),
    "POST /generate/pop (a taken name)": {
        **keyed(OK, others=forbidden("WrongCredentials"), allow=("worker_owner",)),
        "anonymous": forbidden("AnonForbiddenWorker"),
    },
    # submit: the owner of the worker holding the job
    "POST /generate/submit": keyed(OK, others=forbidden("WrongCredentials"), allow=("worker_owner",)),
    # rate: no key; a completed request was never shared (4.1 item 6), so everyone gets the refusal
    "POST /generate/rate/{id}": expect((400, "AestheticsNotPublic")),
    # 1.2 text
    "POST /generate/text/async": keyed(ACCEPTED),
    "GET /generate/text/status/{id}": expect(OK),
    "DELETE /generate/text/status/{id}": expect(OK),
    "POST /generate/text/pop": keyed(OK, others=forbidden("AnonForbiddenWorker"), allow=REGISTERED),
    "POST /generate/text/submit": keyed(OK, others=forbidden("WrongCredentials"), allow=("worker_owner",)),
    # 1.3 alchemy
    "POST /interrogate/async": keyed(ACCEPTED),
    "GET /interrogate/status/{id}": expect(OK),
    "DELETE /interrogate/status/{id}": expect(OK),
    "POST /interrogate/pop": keyed(OK, others=forbidden("AnonForbiddenWorker"), allow=REGISTERED),
    "POST /interrogate/submit": keyed(OK, others=forbidden("WrongCredentials"), allow=("worker_owner",)),
    # 1.4 workers: reads take an optional key (moderators see more); changes: owner or mod per field
    "GET /workers": optional_key(OK),
    "GET /workers/{worker_id}": optional_key(OK),
    "GET /workers/name/{worker_name}": optional_key(OK),
    "PUT /workers/{worker_id} (info)": keyed(OK, others=forbidden("NotOwner"), allow=("worker_owner", *MODS)),
    "PUT /workers/{worker_id} (paused)": keyed(OK, others=forbidden("NotModerator"), allow=MODS),
    "DELETE /workers/{worker_id}": keyed(OK, others=forbidden("NotOwner"), allow=("worker_owner", *MODS)),
    # 1.5 users: find_user needs a key (its owner's details); a missing or unknown one finds nobody
    "GET /find_user": expect(OK, none=(404, "UserNotFound"), invalid=(404, "UserNotFound")),
    "GET /users": expect(OK),
    "GET /users/{user_id}": optional_key(OK),
    # PUT /users/{id}: per field; anonymous may modify no user (section 2)
    "PUT /users/{user_id} (contact: self or mod)": {
        **keyed(OK, others=forbidden("NotModerator"), allow=("owner", *MODS)),
        "anonymous": forbidden("AnonForbiddenUserMod"),
    },
    "PUT /users/{user_id} (trusted: mod)": {
        **keyed(OK, others=forbidden("NotModerator"), allow=MODS),
        "anonymous": forbidden("AnonForbiddenUserMod"),
    },
    "PUT /users/{user_id} (admin_comment: mod)": {
        **keyed(OK, others=forbidden("NotModerator"), allow=MODS),
        "anonymous": forbidden("AnonForbiddenUserMod"),
    },
    "PUT /users/{user_id} (moderator: admin)": {
        **keyed(OK, others=forbidden("NotAdmin"), allow=("admin",)),
        "anonymous": forbidden("AnonForbiddenUserMod"),
    },
    "PUT /users/{user_id} (kudos: admin)": {
        **keyed(OK, others=forbidden("NotAdmin"), allow=("admin",)),
        "anonymous": forbidden("AnonForbiddenUserMod"),
    },
    # DELETE /users/{id}: the user themself or a moderator (the anonymous key is neither)
    "DELETE /users/{user_id}": keyed(OK, others=forbidden("NotUserOrMod"), allow=("owner", *MODS)),
    # 1.7 kudos: any registered user sends (anonymous cannot, section 2: a transfer rc, so 400); only
    # user id 1 awards (this horde: the admins too; the matrix's admin is both)
    "POST /kudos/transfer": {**keyed(OK), "anonymous": (400, "KudosTransferFromAnon")},
    "POST /kudos/award": keyed(OK, others=forbidden("NotAllowedAwards"), allow=("admin",)),
    # 1.6 teams: anyone lists; trusted users (and mods) create; with a key only a mod sees details;
    # the creator (here the trusted user) or a mod changes and deletes
    "GET /teams": expect(OK),
    "POST /teams": keyed(OK, others=forbidden("UntrustedTeamCreation"), allow=("trusted", *MODS)),
    "GET /teams/{team_id}": {
        **expect(forbidden("NotModerator"), none=OK, invalid=BAD_KEY),
        **{mod: OK for mod in MODS},
    },
    "PATCH /teams/{team_id}": keyed(OK, others=forbidden("NotOwner"), allow=("trusted", *MODS)),
    "DELETE /teams/{team_id}": keyed(OK, others=forbidden("NotOwner"), allow=("trusted", *MODS)),
    # 1.11 shared keys: registered users create (anonymous cannot, section 2); anyone holding the id
    # reads it; only its owner (here the "owner" user) changes or deletes it
    "PUT /sharedkeys": keyed(OK, others=forbidden("AnonForbidden"), allow=REGISTERED),
    "GET /sharedkeys/{sharedkey_id}": expect(OK),
    "PATCH /sharedkeys/{sharedkey_id}": keyed(OK, others=forbidden("NotOwner"), allow=("owner",)),
    "DELETE /sharedkeys/{sharedkey_id}": keyed(OK, others=forbidden("NotOwner"), allow=("owner",)),
    # 1.8 statistics: unauthenticated
    "GET /stats/img/totals": expect(OK),
    "GET /stats/img/models": expect(OK),
    "GET /stats/text/totals": expect(OK),
    "GET /stats/text/models": expect(OK),
    # 1.9 styles: anyone reads; customizers and trusted users (and mods) create, anonymous never; the
    # owner (here the customizer) patches, the owner or a mod deletes and changes examples; the
    # reference refuses someone else's style with a generic Forbidden (SEMANTICS 2, wrong slot)
    **{
        row: answers
        for kind in ("image", "text")
        for row, answers in (
            (f"GET /styles/{kind}", expect(OK)),
            (
                f"POST /styles/{kind}",
                {
                    **keyed(
                        OK,
                        others=forbidden("StylesRequiresCustomizer"),
                        allow=("trusted", "customizer", *MODS),
                    ),
                    "anonymous": forbidden("StylesAnonForbidden"),
                },
            ),
            (f"GET /styles/{kind}/{{style_id}}", expect(OK)),
            (f"GET /styles/{kind}_by_name/{{style_name}}", expect(OK)),
            (
                f"PATCH /styles/{kind}/{{style_id}}",
                keyed(OK, others=forbidden("Forbidden"), allow=("customizer",)),
            ),
            (
                f"DELETE /styles/{kind}/{{style_id}}",
                keyed(OK, others=forbidden("Forbidden"), allow=("customizer", *MODS)),
            ),
        )
    },
    **{
        row: keyed(OK, others=forbidden("Forbidden"), allow=("customizer", *MODS))
        for row in (
            "POST /styles/image/{style_id}/example",
            "PATCH /styles/image/{style_id}/example/{example_id}",
            "DELETE /styles/image/{style_id}/example/{example_id}",
        )
    },
    # collections: any registered user creates; the owner patches, the owner or a mod deletes
    "GET /collections": expect(OK),
    "POST /collections": {**keyed(OK), "anonymous": forbidden("StylesAnonForbidden")},
    "GET /collections/{collection_id}": expect(OK),
    "GET /collection_by_name/{collection_name}": expect(OK),
    "PATCH /collections/{collection_id}": keyed(OK, others=forbidden("Forbidden"), allow=("customizer",)),
    "DELETE /collections/{collection_id}": keyed(
        OK, others=forbidden("Forbidden"), allow=("customizer", *MODS)
    ),
    # 1.4 worker messages: registered users; to one's own worker (mods: any); deleted by author or mod
    "GET /workers/messages": keyed(OK, others=forbidden("AnonForbidden"), allow=REGISTERED),
    "POST /workers/messages": {
        **keyed(OK, others=forbidden("MessagesOnlyOwnWorkers"), allow=("worker_owner", *MODS)),
        "anonymous": forbidden("AnonForbidden"),
    },
    "GET /workers/messages/{message_id}": expect(OK),
    "DELETE /workers/messages/{message_id}": {
        **keyed(OK, others=forbidden("NotOwner"), allow=("worker_owner", *MODS)),
        "anonymous": forbidden("AnonForbidden"),
    },
    # 1.10 filters: moderators only
    **{
        row: keyed(OK, others=forbidden("NotModerator"), allow=MODS)
        for row in (
            "GET /filters",
            "PUT /filters",
            "POST /filters",
            "GET /filters/regex",
            "GET /filters/{filter_id}",
            "PATCH /filters/{filter_id}",
            "DELETE /filters/{filter_id}",
        )
    },
    # this horde's extension: the jobs reported as CSAM, for moderators
    "GET /problem_jobs": keyed(OK, others=forbidden("NotModerator"), allow=MODS),
    # 1.8 status: unauthenticated, except the modes: a key there must be a moderator's
    "GET /status/heartbeat": expect(OK),
    "GET /status/models": expect(OK),
    "GET /status/models/{model_name:path}": expect(OK),
    "GET /status/performance": expect(OK),
    "GET /status/news": expect(OK),
    "GET /status/modes": {
        **expect(forbidden("NotModerator"), none=OK, invalid=BAD_KEY),
        **{mod: OK for mod in MODS},
    },
    # 1.13 documents: unauthenticated
    "GET /documents/terms": expect(OK),
    "GET /documents/privacy": expect(OK),
    "GET /documents/sponsors": expect(OK),
    "PUT /status/modes (maintenance: admin)": keyed(OK, others=forbidden("NotAdmin"), allow=("admin",)),
    "PUT /status/modes (raid: mod)": keyed(OK, others=forbidden("NotModerator"), allow=MODS),
    # 1.12 operations: moderators only
    "GET /operations/ipaddr": keyed(OK, others=forbidden("NotModerator"), allow=MODS),
    "POST /operations/ipaddr": keyed(OK, others=forbidden("NotModerator"), allow=MODS),
    "GET /operations/ipaddr/{ipaddr}": keyed(OK, others=forbidden("NotModerator"), allow=MODS),
    "DELETE /operations/ipaddr": keyed(OK, others=forbidden("NotModerator"), allow=MODS),
    "PUT /operations/block_worker_ipaddr/{worker_id}": keyed(
        OK, others=forbidden("NotModerator"), allow=MODS
    ),
    "DELETE /operations/block_worker_ipaddr/{worker_id}": keyed(
        OK, others=forbidden("NotModerator"), allow=MODS
    ),
    # this horde's own: the dev test user (loopback, HORDE_TEST_APIKEYS), pages, signed objects, docs
    "POST /dev/test-user": expect(CREATED),
    "GET /.well-known/serviceinfo": expect(OK),
    "GET /metrics": expect(OK),
    "PUT /objects/{key}": expect(OK),
    "GET /objects/{key}": expect(OK),
    "GET /register": expect(OK),
    "POST /register": expect(CREATED),
    # the OpenAI-compatible API: any key (as Authorization: Bearer), errors in OpenAI's shape; called
    # with a body refused after the key (n: 0), so no call waits for a worker
    "GET /v1/models": expect(OK),
    # pushed status: public as the polls are; an unknown request is a 404 before any event
    "GET /generate/status/{id}/events": expect((404, "RequestNotFound")),
    "GET /generate/text/status/{id}/events": expect((404, "RequestNotFound")),
    "GET /interrogate/status/{id}/events": expect((404, "RequestNotFound")),
    **{
        f"POST /v1/{path}": {
            **keyed((400, "BadRequest")),
            "none": (401, "invalid_api_key"),
            "invalid": (401, "InvalidAPIKey"),
        }
        for path in ("completions", "chat/completions", "images/generations")
    },
    "GET /api/swagger.json": expect(OK),
    "GET /api/openapi.json": expect(OK),
    "HEAD /api/openapi.json": expect(OK),
    "GET /api/": expect(OK),
    "HEAD /api/": expect(OK),
    "GET /redoc": expect(OK),
    "HEAD /redoc": expect(OK),
    "GET /docs/oauth2-redirect": expect(OK),
    "HEAD /docs/oauth2-redirect": expect(OK),
}
