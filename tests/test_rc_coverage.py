"""Every rc the server can emit is asserted by at least one test of the server's answers.

Raised: each `RC.<name>` the server's code names (src/horde/server). Asserted: the rc's wire string,
quoted, or `RC.<name>`, in a test that checks the server's answers (tests/server, tests/e2e, tests/cli):
the contract tests list every rc and so prove nothing about emission, and are left out. An rc that no
test can reach goes in `UNASSERTED` with the reason; the list is reviewed like code.
"""

from __future__ import annotations

import re
from pathlib import Path

from horde.contract.rc import RC

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "src" / "horde" / "server"
ANSWER_TESTS = [ROOT / "tests" / name for name in ("server", "e2e", "cli")]

# rc name -> why no test asserts it (reviewed: keep each reason true, and the list short)
UNASSERTED: dict[str, str] = {
    # unreachable as the checks are ordered (image_checks.py): transparent with a control_type and no
    # source image is ControlNetSourceMissing, and with one it is InvalidTransparencyImg2Img
    "InvalidTransparencyCN": "unreachable: ControlNetSourceMissing or InvalidTransparencyImg2Img first",
}


def raised() -> set[str]:
    names: set[str] = set()
    for path in SERVER.rglob("*.py"):
        names.update(re.findall(r"\bRC\.(\w+)", path.read_text(encoding="utf-8")))
    return names


def asserted() -> set[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for d in ANSWER_TESTS for p in d.rglob("*.py"))
    found = set(re.findall(r"\bRC\.(\w+)", text))
    found.update(rc.name for rc in RC if f'"{rc.value}"' in text)
    return found


def test_every_raised_rc_is_asserted() -> None:
    never = sorted(raised() - asserted() - set(UNASSERTED))
    assert never == [], f"rcs the server raises that no test asserts: {never}"


def test_the_exception_list_is_current() -> None:
    names = {rc.name for rc in RC}
    assert set(UNASSERTED) <= names, "an excepted rc no longer exists"
    stale = sorted(set(UNASSERTED) & asserted())
    assert stale == [], f"asserted now, take them off UNASSERTED: {stale}"
    assert set(UNASSERTED) <= raised(), "an excepted rc is no longer raised"


def test_the_scan_sees_the_server() -> None:
    assert {"BadRequest", "InvalidAPIKey", "WorkerNotFound"} <= raised()
    assert {"BadRequest", "InvalidAPIKey", "WorkerNotFound"} <= asserted()
