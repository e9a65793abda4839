"""tests/needs.py: a missing requirement skips with what to install, and fails under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import needs


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda: needs.shared_file(Path("/nonexistent/shared/api/x.json")), "check out the shared/ folder"),
        (lambda: needs.module("no_such_module_here", extra="image"), "uv sync --extra image"),
        (lambda: needs.modules("no_such_module_here", extra="alchemy"), "uv sync --extra alchemy"),
        (lambda: needs.program("no-such-program-here", install="apt-get install it"), "apt-get install it"),
    ],
)
def test_missing_skips_outside_ci_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, call: object, says: str
) -> None:
    assert callable(call)
    monkeypatch.setattr(needs, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match=says):
        call()
    monkeypatch.setattr(needs, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match=f"CI=true: .*{says}"):
        call()


def test_present_things_are_returned() -> None:
    assert needs.shared_file(Path(__file__)) == Path(__file__)
    assert needs.module("json", extra="none").__name__ == "json"
    assert needs.program("sh", install="-").endswith("sh")
