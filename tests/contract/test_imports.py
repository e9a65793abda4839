"""contract/ imports only pydantic, the standard library and itself."""

from __future__ import annotations

import ast
import pkgutil
import sys
from pathlib import Path

import horde.contract

ALLOWED = {"pydantic", "horde"} | set(sys.stdlib_module_names)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_contract_imports_only_pydantic_and_stdlib() -> None:
    package = Path(horde.contract.__file__).parent
    modules = [package / f"{m.name}.py" for m in pkgutil.iter_modules([str(package)])]
    assert len(modules) >= 10
    bad = {
        f"{path.name}: {name}"
        for path in [package / "__init__.py", *modules]
        for name in _imports(path)
        if name.split(".")[0] not in ALLOWED
        or (name.startswith("horde") and not name.startswith("horde.contract"))
    }
    assert bad == set()
