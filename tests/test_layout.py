"""The import rules of STYLE.md: contract imports only pydantic; nothing outside server imports it."""

from __future__ import annotations

import ast
from fnmatch import fnmatch
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


# The server's floors, lowest first: a module may import its own floor and the floors below, never
# one above (an import running back up). Every module of src/horde/server must be on exactly one.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation: domain-free helpers, the database, images", (
        "", "kit", "kit.*", "config", "errors", "db", "migrate", "middleware", "ratelimit", "redis",
        "catalog", "clientip",
        "images", "images.codec", "images.storage", "images.sources", "images.s3", "images.backends",
        "observe.logs", "observe.metrics", "observe.middleware", "processes", "answer_cache",
    )),
    ("tables and records", (
        "models", "*.models", "jobs.records", "workers.capabilities", "users.principal", "users.keys",
        "kudos.pricing", "kudos.records", "resources", "access", "filters.regexes", "filters.prompt",
        "jobs", "users", "workers", "kudos", "webhooks", "status", "dev", "cluster", "observe", "teams",
        "messages", "documents", "filters", "openai", "events", "sharedkeys", "stats",  # packages
        "styles",
        "operations", "operations.networks", "openai.templates",
    )),
    ("each domain's own writes and caches", (
        "kudos.service", "workers.writes", "webhooks.service", "users.service", "users.cache",
        "workers.cache", "cluster.nodes", "cluster.secrets", "teams.writes", "messages.board",
        "filters.service", "filters.cache", "operations.guard", "operations.reputation",
        "kudos.taxes", "kudos.rewards", "kudos.trust", "workers.uptime", "stats.writes",
        "users.records",
        "styles.lookup",
    )),
    ("matching and the statement layer", (
        "jobs.matching", "jobs.matching.*", "jobs.statements", "jobs.statements.*", "jobs.store",
        "jobs.snapshot",
    )),
    ("kinds", ("jobs.kinds", "jobs.kinds.*")),
    ("the running horde", ("state",)),
    ("services and scheduled work", (
        "auth", "scheduler", "jobs.claims", "jobs.results", "jobs.ratings", "jobs.requests", "jobs.status",
        "jobs.waiting", "jobs.service", "jobs.scheduled", "jobs.uploads", "jobs.idempotency", "jobs.problems",
        "workers.service", "workers.details", "users.details", "status.service", "documents.service",
        "kudos.scheduled", "kudos.transfers", "kudos.monthly", "webhooks.scheduled", "observe.probe",
        "teams.service", "teams.scheduled", "messages.service", "messages.scheduled", "filters.screen",
        "operations.service", "openai.service", "events.service", "workers.scheduled", "users.changes",
        "users.scheduled", "sharedkeys.service", "sharedkeys.spending", "sharedkeys.scheduled",
        "stats.service", "stats.scheduled",
        "styles.service", "styles.collections", "styles.apply", "styles.scheduled",
    )),
    ("routes and the application", ("*.routes", "api", "app", "serve", "lean")),
]  # fmt: skip
SERVER = SRC / "server"


def _server_modules() -> dict[str, Path]:
    modules = {}
    for path in SERVER.rglob("*.py"):
        parts = path.relative_to(SERVER).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _server_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The server modules `path` imports (`from horde.server.x import y` counts y when y is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("horde.server"):
            base = node.module.removeprefix("horde.server").lstrip(".")
            names = [f"{base}.{a.name}".lstrip(".") for a in node.names]
            names = [n if n in modules else base for n in names]
        elif isinstance(node, ast.Import):
            names = [
                a.name.removeprefix("horde.server.") for a in node.names if a.name.startswith("horde.server.")
            ]
        found.update(n for n in names if n in modules)
    return found


def _layer_of(module: str) -> int:
    floors = [i for i, (_, patterns) in enumerate(LAYERS) if any(fnmatch(module, p) for p in patterns)]
    assert len(floors) == 1, f"{module} is on floors {floors}: put it on exactly one in LAYERS"
    return floors[0]


def test_no_import_circle_in_the_server() -> None:
    modules = _server_modules()
    graph = {name: _server_imports(path, modules) - {name} for name, path in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            assert state.get(target) != 1, "import circle: " + " -> ".join([*path, name, target])
            if target not in state:
                visit(target, [*path, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_no_import_runs_back_up_the_layers() -> None:
    modules = _server_modules()
    upward = []
    for name, path in sorted(modules.items()):
        floor = _layer_of(name)
        for target in sorted(_server_imports(path, modules)):
            if _layer_of(target) > floor:
                upward.append(
                    f"{name} ({LAYERS[floor][0]}) imports {target} ({LAYERS[_layer_of(target)][0]})"
                )
    assert not upward, "\n".join(upward)
