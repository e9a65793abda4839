"""The CLI starts light: `horde --help` and the client verbs' help import no client, server or pydantic."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("horde.server", "horde.client", "horde.worker", "httpx", "pydantic", "fastapi", "sqlalchemy")


def _modules_after(code: str) -> set[str]:
    probe = f"""
import sys
{code}
print("\\n".join(sorted(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_help_imports_nothing_heavy() -> None:
    code = """
from horde.cli import main
for args in (["--help"], ["generate", "text", "--help"], ["up", "--help"], ["status", "--help"]):
    try:
        main(args, prog_name="horde")
    except SystemExit as exc:
        assert exc.code == 0, exc.code
"""
    loaded = _modules_after(code)
    heavy = sorted(m for m in loaded if m.startswith(HEAVY))
    assert heavy == []
