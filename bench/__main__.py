"""`python -m bench {run,local} {s1,s2,s3,s4,s5,history} [flags]`: see bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from bench import history, local, s1_storm, s2_flood, s3_idle, s4_mixed, s5_paced
from bench.common import save
from bench.discover import database_of, listener_pid
from bench.net import is_loopback
from bench.runner import Target

SCENARIOS: dict[str, ModuleType] = {
    "s1": s1_storm, "s2": s2_flood, "s3": s3_idle, "s4": s4_mixed, "s5": s5_paced,
    "history": history,
}  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True)
    run = modes.add_parser("run", help="against a running horde")
    loc = modes.add_parser("local", help="start a horde on a fresh PostgreSQL database, run, tear down")
    for mode in (run, loc):
        scenarios = mode.add_subparsers(dest="scenario", required=True)
        for name, module in SCENARIOS.items():
            p = scenarios.add_parser(name, help=(module.__doc__ or "").splitlines()[0])
            p.add_argument("--procs", type=int, default=2, help="load generator processes")
            p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
            if mode is run:
                p.add_argument("--url", required=True, help="the horde, e.g. http://127.0.0.1:7001")
                p.add_argument(
                    "--server-pid",
                    type=int,
                    default=None,
                    help="API process to read CPU time from (default: the local listener)",
                )
                p.add_argument("--pg-url", default=None, help="asyncpg DSN of the horde's database")
            else:
                p.add_argument("--keep", action="store_true", help="keep the database and data directory")
                p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                               help="extra environment for the local horde serve")  # fmt: skip
            module.add_arguments(p)
    return parser


def _target(args: argparse.Namespace) -> Target:
    pid = args.server_pid
    if pid is None and is_loopback(args.url):
        pid = listener_pid(args.url)
    dsn = args.pg_url or (database_of(pid) if pid else None)
    return Target(
        url=args.url.rstrip("/"), server_pid=pid, pg_dsn=dsn, pg_db=dsn.rsplit("/", 1)[1] if dsn else None
    )


async def _main(args: argparse.Namespace) -> int:
    module = SCENARIOS[args.scenario]
    runner: Callable[[Target, argparse.Namespace], Awaitable[dict[str, Any]]] = module.run
    if args.mode == "run":
        target = _target(args)
        print(f"target {target.url} server pid {target.server_pid} database {target.pg_db}")
        result = await runner(target, args)
    else:
        env = dict(item.split("=", 1) for item in args.server_env)
        if getattr(args, "probe", None):
            env["HORDE_POP_PROBE"] = args.probe
        server = await local.start(env)
        target = Target(server.url, server.pid, server.db_url, server.db_name)
        print(f"local horde {server.url} pid {server.pid} database {server.db_name}")
        try:
            result = await runner(target, args)
            if errors := local.error_summary(server):
                print(errors)
                result["server_log_errors"] = errors
        except BaseException:
            print(local.error_summary(server), file=sys.stderr)
            raise
        finally:
            await local.stop(server, keep=args.keep)
    if not args.no_save:
        print(f"saved {save(args.scenario, {'mode': args.mode, **result})}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
