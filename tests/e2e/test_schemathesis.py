"""Schemathesis, driven by the reference's swagger, fuzzes the real server: no input may get a 5xx.

The operations are those of the reference's swagger (../shared/api/aihorde-v2.swagger.json) that our
server builds, read from the running server's own OpenAPI so new routes join by themselves. Each gets
positive and negative examples (schemathesis 4, Swagger 2.0 input), a valid API key in the `apikey`
header, and the `not_a_server_error` check. Failures are collected, not shrunk: the report lists every
failing operation with a curl command that reproduces it. The run is bounded in examples and in time.

URLs in generated bodies (webhooks, source images) are rewritten to a closed port on 127.0.0.1, so the
server never sends a request off this machine.
"""

from __future__ import annotations

import base64
import io
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok

from tests.contract.swagger import SWAGGER_PATH, requires_swagger
from tests.e2e.conftest import HordeServer

# One xdist worker should run every test of the shared servers (tests/e2e/conftest.py) so they start once;
# other workers still pass, each with servers of its own (pytest 9.2 + xdist 3.8 ignore the groups).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-horde-server"), requires_swagger]

EXAMPLES = {"positive": 15, "negative": 10}  # per operation: 25 in all
# seconds per operation (a cap, not a wait: a quiet machine needs about half): an operation left when the
# run's budget is spent gets no examples, and the run fails
BUDGET_PER_OPERATION = 1.5
IMAGE_TEXT_POPS = ("POST /v2/generate/pop", "POST /v2/generate/text/pop")
WORKER_NAME_LOOKUPS = ("GET /v2/workers", "GET /v2/workers/name/{worker_name}")
CLOSED_URL = "http://127.0.0.1:9/e2e"  # the discard port: nothing listens, the connection is refused
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass
class Findings:
    """What one run saw: example counts per operation, and the failures (first few per operation)."""

    calls: dict[str, int] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add_failure(self, label: str, text: str) -> None:
        found = self.failures.setdefault(label, [])
        if len(found) < 3:
            found.append(text)


def _template(path: str) -> str:
    """`/api/v2/workers/{worker_id}` and `/v2/workers/{id}` both become `/v2/workers/{}`."""
    path = path.removeprefix("/api")
    return re.sub(r"\{[^}]+\}", "{}", path)


def _built_operations(server: HordeServer) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route the running server documents."""
    spec = httpx.get(f"{server.base_url}/api/openapi.json", timeout=30).json()
    return {(method.upper(), _template(path)) for path, item in spec["paths"].items() for method in item}


def _without_outside_urls(value: Any) -> Any:
    """The same value with every URL-looking string pointed at a closed local port."""
    if isinstance(value, str) and _URL.match(value.strip()):
        return CLOSED_URL
    if isinstance(value, dict):
        return {k: _without_outside_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_outside_urls(v) for v in value]
    return value


POP_LIMITS = ("max_pixels", "max_length", "max_context_length")  # worker limits the pop query compares


_LONG_NUMBER = re.compile(r"\d{19,}")  # beyond a 64-bit integer


def _has_odd_digits(value: Any) -> bool:
    """A string with a digit `int()` refuses (like '¹') or a number too long for the database."""
    if isinstance(value, str):
        return any(c.isdigit() and not c.isdecimal() for c in value) or bool(_LONG_NUMBER.search(value))
    if isinstance(value, dict):
        return _has_odd_digits(list(value.values()))
    if isinstance(value, list):
        return any(_has_odd_digits(item) for item in value)
    return False


def _known_defect(case: Any) -> str | None:
    """Why this case is not sent: it hits a defect pinned by its own test below (None: send it)."""
    body = case.body if isinstance(case.body, dict) else {}
    label = case.operation.label
    amount = body.get("amount")
    if label == "POST /v2/interrogate/pop" and isinstance(amount, int) and amount < 1:
        return "test_alchemy_pop_refuses_an_amount_below_one"
    limits = [body.get(key) for key in POP_LIMITS]
    if label in IMAGE_TEXT_POPS and any(isinstance(v, int) and abs(v) >= 2**31 for v in limits):
        return "test_pop_limits_out_of_integer_range_are_no_server_error"
    if _has_odd_digits([case.body, case.query, case.path_parameters, case.headers]):
        return "test_digit_strings_are_no_server_error"
    query, path = case.query or {}, case.path_parameters or {}
    names = [str(query.get("name", "")), str(path.get("worker_name", ""))]
    if label in WORKER_NAME_LOOKUPS and any("\x00" in name for name in names):
        return "test_nul_in_a_worker_name_is_no_server_error"
    return None


# moderators' calls that change the horde for every later call (the fuzzing key is a moderator's)
GLOBAL_STATE = {"POST /v2/operations/ipaddr", "PUT /v2/status/modes"}


def _restore(server: HordeServer, api_key: str) -> None:
    """Undo what a fuzzed moderator's call changed for everyone: IP timeouts (the swagger's example is
    127.0.0.1, every caller here) and the invite-only and raid modes."""
    with httpx.Client(base_url=server.api, headers={"apikey": api_key}, timeout=30) as http:
        for timeout in http.get("/operations/ipaddr").json():
            http.request("DELETE", "/operations/ipaddr", json={"ipaddr": timeout["ipaddr"]})
        http.put("/status/modes", json={"invite_only_mode": False, "raid_mode": False})


def _fuzz(
    operation: Any,
    mode: Any,
    *,
    api_key: str,
    deadline: float,
    findings: Findings,
    restore: Any,
    examples: int | None = None,
) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.core import NotSet
    from schemathesis.core.failures import Failure, FailureGroup

    label = f"{operation.label} [{mode.value}]"
    findings.calls.setdefault(label, 0)
    if time.monotonic() > deadline:
        return
    started = time.monotonic()
    strategy = operation.as_strategy(generation_mode=mode, headers={"apikey": api_key})

    @settings(
        max_examples=examples or EXAMPLES[mode.value],
        deadline=None,
        derandomize=True,  # the same examples every run: a failure here is reproducible
        database=None,
        phases=[Phase.explicit, Phase.generate],  # collect, don't shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        if time.monotonic() > deadline:
            return
        if not isinstance(case.body, NotSet):
            case.body = _without_outside_urls(case.body)
        if case.query:
            case.query = _without_outside_urls(case.query)
        if _known_defect(case):
            return
        findings.calls[label] += 1
        try:
            # A connection of its own per call: after a 500 the server drops the connection, which
            # would otherwise fail the next case instead of this one.
            response = case.call(timeout=30)
            if operation.label in GLOBAL_STATE:
                restore()
        except Exception as exc:  # a dropped connection is a server failure too
            findings.add_failure(label, f"{type(exc).__name__}: {exc}\n  {case.as_curl_command()}")
            return
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except (Failure, FailureGroup) as exc:
            found = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
            titles = ", ".join(failure.title for failure in found)
            text = f"{response.status_code} {response.text[:300]}\n  {case.as_curl_command()}\n  ({titles})"
            findings.add_failure(label, text)

    try:
        run()
    except Unsatisfiable:  # e.g. no invalid input exists for an operation without inputs
        if findings.calls[label] == 0:
            del findings.calls[label]
    finally:
        findings.seconds[label] = time.monotonic() - started


# Who calls: a trusted moderator (and admin) gets positive and negative examples; a plain user and the
# anonymous key get positive ones, at least ROLE_EXAMPLES each where the swagger allows that many.
ROLE_EXAMPLES = 10
ROLE_BUDGET_PER_OPERATION = 0.75


def _operations(server: HordeServer) -> list[Any]:
    schema = schemathesis.openapi.from_path(str(SWAGGER_PATH))
    schema.config.update(base_url=f"{server.base_url}/api")
    built = _built_operations(server)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"schemathesis cannot read an operation of the swagger: {result}"
        operation = result.ok()
        if (operation.method.upper(), _template(operation.path)) in built:
            operations.append(operation)
    assert len(operations) >= 10, f"only {len(operations)} swagger operations are built: {sorted(built)}"
    return operations


def _check(server: HordeServer, role: str, findings: Findings, budget: float) -> None:
    untested = sorted(label for label, count in findings.calls.items() if count == 0)
    took, calls = findings.seconds, findings.calls
    summary = "\n".join(f"{label}: {n} calls, {took.get(label, 0):.1f} s" for label, n in calls.items())
    print(f"schemathesis on {server.database} as {role}: {len(calls)} operation modes\n{summary}")
    report = "\n\n".join(
        f"{label}\n  " + "\n  ".join(texts) for label, texts in sorted(findings.failures.items())
    )
    assert not findings.failures, f"server errors on {server.database} as {role}:\n{report}"
    # an operation never tried is an operation never checked: the run fails rather than pass unseen
    assert not untested, f"the {budget:.0f} s budget ran out before these were tried: {untested}"


def test_no_server_errors(horde_server: HordeServer) -> None:
    """Every operation of the reference's swagger that we build answers anything without a 5xx."""
    from schemathesis import GenerationMode

    api_key = horde_server.api_key("schemathesis")
    operations = _operations(horde_server)
    findings = Findings()

    def restore() -> None:
        _restore(horde_server, api_key)

    budget = BUDGET_PER_OPERATION * len(operations)
    deadline = time.monotonic() + budget
    # Valid input for every operation first, so a slow machine drops invalid input first. Without a
    # body or query there is no invalid input to make (path parameters are free strings).
    for operation in operations:
        _fuzz(
            operation,
            GenerationMode.POSITIVE,
            api_key=api_key,
            deadline=deadline,
            findings=findings,
            restore=restore,
        )
    for operation in operations:
        if len(operation.body) or len(operation.query):
            _fuzz(
                operation, GenerationMode.NEGATIVE, api_key=api_key, deadline=deadline, findings=findings,
                restore=restore,
            )  # fmt: skip
    _check(horde_server, "a trusted moderator", findings, budget)


@pytest.mark.parametrize("role", ["plain user", "anonymous"])
def test_no_server_errors_for_other_roles(horde_server: HordeServer, role: str) -> None:
    """The same operations called by a plain user and by the anonymous key: refusals, never a 5xx."""
    from schemathesis import GenerationMode

    moderator = horde_server.api_key("schemathesis")
    if role == "anonymous":
        api_key = "0000000000"
    else:
        api_key = horde_server.api_key("schemathesis_plain", moderator=False, trusted=False)
    findings = Findings()
    operations = _operations(horde_server)
    budget = ROLE_BUDGET_PER_OPERATION * len(operations)
    deadline = time.monotonic() + budget
    for operation in operations:
        _fuzz(
            operation, GenerationMode.POSITIVE, api_key=api_key, deadline=deadline, findings=findings,
            restore=lambda: _restore(horde_server, moderator), examples=ROLE_EXAMPLES,
        )  # fmt: skip
    _check(horde_server, role, findings, budget)


def test_alchemy_pop_refuses_an_amount_below_one(horde_server: HordeServer) -> None:
    """Found by the fuzzing above: a pop with `amount` below 1 is refused (400) or served as 1, never more."""
    key = horde_server.api_key("alchemy_amount")
    image = base64.b64encode(_webp()).decode()
    with _fresh_connections(horde_server, key) as http:
        names = ["caption", "nsfw", "interrogation"]
        forms = [{"name": name} for name in names]
        accepted = http.post("/interrogate/async", json={"forms": forms, "source_image": image})
        assert accepted.status_code == 202, accepted.text
        try:
            for amount in (-1, 0):
                body = {"name": "amount tester", "forms": names, "amount": amount}
                popped = http.post("/interrogate/pop", json=body)
                said = f"amount={amount}: {popped.status_code} {popped.text}"
                assert popped.status_code in (200, 400), said
                if popped.status_code == 200:
                    assert len(popped.json().get("forms") or []) <= 1, said
        finally:
            http.delete(f"/interrogate/status/{accepted.json()['id']}")


def test_pop_limits_out_of_integer_range_are_no_server_error(horde_server: HordeServer) -> None:
    """Found by the fuzzing above: a worker limit beyond the database's integers is refused, not a 500."""
    key = horde_server.api_key("pop_limits")
    with _fresh_connections(horde_server, key) as http:
        queued = http.post("/generate/text/async", json={"prompt": "x", "params": {"max_length": 16}})
        assert queued.status_code == 202, queued.text
        try:
            answers = []
            for value in (2**40, -(2**70)):
                for field in ("max_length", "max_context_length"):
                    body = {"name": "limits tester", "models": ["koboldcpp/Marx-3B-V3"], field: value}
                    answers.append((field, value, http.post("/generate/text/pop", json=body)))
                body = {"name": "limits tester image", "models": ["stable_diffusion"], "max_pixels": value}
                answers.append(("max_pixels", value, http.post("/generate/pop", json=body)))
        finally:
            http.delete(f"/generate/text/status/{queued.json()['id']}")
    errors = [f"{field}={value}: {r.status_code} {r.text[:120]}" for field, value, r in answers]
    assert [e for e in errors if not e.split(": ", 1)[1].startswith(("200", "400"))] == []


def test_nul_in_a_worker_name_is_no_server_error(horde_server: HordeServer) -> None:
    """Found by the fuzzing above: a worker name with a NUL finds no worker (or is refused), never a 500."""
    key = horde_server.api_key("nul_names")
    with _fresh_connections(horde_server, key) as http:
        answers = {
            "GET /workers?name=": http.get("/workers", params={"name": "a\x00b"}),
            "GET /workers/name/": http.get("/workers/name/a%00b"),
        }
    unexpected = {w: f"{r.status_code} {r.text[:120]}" for w, r in answers.items() if r.status_code >= 500}
    assert unexpected == {}


def test_digit_strings_are_no_server_error(horde_server: HordeServer) -> None:
    """Found by the fuzzing above: odd digit strings are refused or not found, never a 500.

    A bridge_agent version of '¹' used to leave a worker that made every later image pop and status
    answer 500; it is parsed as version 0 now, and the pop below proves it.
    """
    key = horde_server.api_key("odd_digits")
    text_pop = {"name": "odd digits text", "models": ["koboldcpp/Marx-3B-V3"]}
    with _fresh_connections(horde_server, key) as http:
        answers = {
            "GET /users/¹": http.get("/users/\u00b9"),
            "GET /users/<23 digits>": http.get(f"/users/{'9' * 23}"),
            "POST /generate/async seed ¹": http.post(
                "/generate/async", json={"prompt": "x", "params": {"seed": "\u00b9", "steps": 5}}
            ),
            "POST /generate/text/pop priority a#¹": http.post(
                "/generate/text/pop", json={**text_pop, "priority_usernames": ["a#\u00b9"]}
            ),
            "POST /generate/text/pop priority a#<23 digits>": http.post(
                "/generate/text/pop", json={**text_pop, "priority_usernames": [f"a#{'9' * 23}"]}
            ),
            "POST /generate/pop bridge version ¹": http.post(
                "/generate/pop", json={"name": "odd bridge", "bridge_agent": "AI Horde Worker reGen:\u00b9:x"}
            ),
        }
    unexpected = {w: f"{r.status_code} {r.text[:100]}" for w, r in answers.items() if r.status_code >= 500}
    assert unexpected == {}


def _fresh_connections(server: HordeServer, key: str) -> httpx.Client:
    """A client that opens a connection per request: the server drops a connection after a 500."""
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(base_url=server.api, headers={"apikey": key}, timeout=30, limits=no_reuse)


def _webp() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="WEBP")
    return buffer.getvalue()
