"""The import rules of STYLE.md: contract imports only pydantic; nothing outside server imports it."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "horde"
STDLIB_OK = {"datetime", "enum", "typing", "collections", "dataclasses", "re", "uuid", "__future__"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_contract_imports_only_pydantic() -> None:
    for path in (SRC / "contract").rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            allowed = (
                top in {"pydantic", "pydantic_core"} or top in STDLIB_OK or name.startswith("horde.contract")
            )
            assert allowed, f"{path.name} imports {name}"


def test_nothing_outside_server_imports_server() -> None:
    for path in SRC.rglob("*.py"):
        if "server" in path.relative_to(SRC).parts[:1]:
            continue
        for name in _imports(path):
            if name.startswith("horde.server"):
                # the CLI's server verbs import the server lazily, inside the command functions
                assert path.parent.name == "cli", f"{path} imports {name}"


def test_client_and_worker_do_not_need_sqlalchemy() -> None:
    for package in ("client", "worker", "contract"):
        for path in (SRC / package).rglob("*.py") if (SRC / package).exists() else []:
            assert not any(n.startswith("sqlalchemy") for n in _imports(path)), path
