"""Mutation testing of the core modules with mutmut, one module at a time (issue 9 item 5).

    python -m scripts.mutate                # list the modules and the tests that cover them
    python -m scripts.mutate pricing        # mutate one module (or `make mutate MODULE=pricing`)
    python -m scripts.mutate pricing --budget 900 --children 1
    python -m scripts.mutate ledger --only "horde.server.kudos.service.x_fold*"   # some functions only

Not part of CI. Each module is mapped to the fast tests that cover it (SQLite-only or service-level
where possible), so a mutant costs seconds; the run happens in `.mutate/<module>/`, a scratch folder
with its own pyproject.toml (mutmut reads its configuration from the working directory's
pyproject.toml) and symlinks to src/ and tests/, so modules do not share mutmut's cache. The run is
niced (`nice -n 15`: the machine is shared) and stopped after `--budget` seconds. At the end the
survival rate is printed; `cd .mutate/<module> && mutmut show <name>` shows a survivor's diff.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".mutate"


@dataclass(frozen=True)
class Module:
    files: tuple[str, ...]  # under src/
    tests: tuple[str, ...]  # pytest node ids or files; "-k" style filters go in `select`
    select: str = ""  # a pytest -k expression (e.g. "not postgresql": SQLite is faster)


MODULES: dict[str, Module] = {
    # the price of a request and the reward of a job (pure functions)
    "pricing": Module(
        ("horde/server/kudos/pricing.py",),
        (
            "tests/server/test_pricing.py",
            "tests/server/test_price_anchors.py",
            "tests/server/test_reward_anchors.py",
        ),
    ),
    # the kudos ledger: postings, folds, the pseudonymous floor
    "ledger": Module(
        ("horde/server/kudos/service.py",),
        (
            "tests/server/test_kudos_movements.py",
            "tests/server/test_kudos_fold.py",
            "tests/server/test_upfront.py",
        ),
        "not postgresql",
    ),
    # the claim and its conditions (which request a worker may pop)
    "claim": Module(
        ("horde/server/jobs/matching/conditions.py", "horde/server/jobs/matching/claim.py"),
        ("tests/server/test_matching_twins.py", "tests/server/test_claim_snapshots.py"),
        "not postgresql",
    ),
    # submit and settlement of a job
    "settlement": Module(
        ("horde/server/jobs/results.py",),
        ("tests/server/test_rewards.py", "tests/server/test_text_lifecycle.py"),
        "not postgresql",
    ),
    # the pop snapshot's skip logic
    "snapshot": Module(
        ("horde/server/jobs/snapshot.py",),
        ("tests/server/test_snapshot.py",),
    ),
    # the access table's checks (the table itself is data: mutmut mutates functions only)
    "access": Module(
        ("horde/server/access.py",),
        ("tests/server/test_access_rules.py",),
    ),
}


def mutmut_config(module: Module) -> str:
    tests = ", ".join(f'"{t}"' for t in module.tests)
    only = ", ".join(f'"src/{f}"' for f in module.files)
    extra = f', "-k", "{module.select}"' if module.select else ""
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        'also_copy = ["migrations", "alembic.ini"]\n'
        f"only_mutate = [{only}]\n"
        f"pytest_add_cli_args_test_selection = [{tests}]\n"
        f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q"{extra}]\n'
        "use_git_change_detection = false\n"
    )


def prepare(name: str, module: Module) -> Path:
    work = SCRATCH / name
    work.mkdir(parents=True, exist_ok=True)
    for link in ("src", "tests", "migrations", "alembic.ini"):
        target = work / link
        if not target.exists():
            target.symlink_to(ROOT / link)
    text = (ROOT / "pyproject.toml").read_text()
    # keep the project's pytest settings, drop any mutmut section, then add this module's
    text = re.sub(r"\n\[tool\.mutmut\][^\[]*", "\n", text)
    (work / "pyproject.toml").write_text(text + mutmut_config(module))
    tomllib.loads((work / "pyproject.toml").read_text())  # a broken config fails here, not in mutmut
    return work


def summary(work: Path) -> dict[str, list[str]]:
    """Mutant names per status, from `mutmut results --all true` (killed, survived, no tests, timeout,
    not checked: the budget ended first, ...)."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    by_status: dict[str, list[str]] = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            by_status.setdefault(status, []).append(name)
    return by_status


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("module", nargs="?", choices=sorted(MODULES))
    parser.add_argument("--budget", type=int, default=1200, help="seconds before the run is stopped")
    parser.add_argument("--children", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results of this module")
    parser.add_argument(
        "--only",
        nargs="*",
        default=[],
        help='mutant name patterns, e.g. "horde.server.kudos.service.x_fold*"',
    )
    args = parser.parse_args()
    if args.module is None:
        for name, module in MODULES.items():
            print(f"{name:11} {' '.join(module.files)}\n{'':11} <- {' '.join(module.tests)} {module.select}")
        return 0
    module = MODULES[args.module]
    if args.fresh:
        shutil.rmtree(SCRATCH / args.module, ignore_errors=True)
    work = prepare(args.module, module)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.setdefault("HORDE_TEST_SHARED", str(ROOT.parent / "shared"))
    command = [
        "nice",
        "-n",
        "15",
        sys.executable,
        "-m",
        "mutmut",
        "run",
        "--max-children",
        str(args.children),
        *args.only,
    ]
    # its own process group: mutmut forks a child per mutant, and the budget stops them all
    run = subprocess.Popen(command, cwd=work, env=env, start_new_session=True)  # noqa: S603 (our own argv)
    try:
        run.wait(timeout=args.budget)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait()
        print(f"stopped after the {args.budget} s budget: the figures below count the mutants tested so far")
    except KeyboardInterrupt:
        os.killpg(run.pid, signal.SIGTERM)
        raise
    by_status = summary(work)
    # a mutant no mapped test runs ("no tests") survives as surely as one the tests run and miss
    survivors = by_status.get("survived", []) + by_status.get("no tests", [])
    for name in survivors:
        print("survived:", name)
    tested = sum(len(v) for k, v in by_status.items() if k not in ("not checked", "skipped"))
    counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_status.items()))
    rate = 100 * len(survivors) / tested if tested else 0.0
    print(f"{args.module}: {counts}")
    print(f"{args.module}: {tested} mutants tested, {len(survivors)} survived ({rate:.1f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
