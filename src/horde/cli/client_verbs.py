"""The client verbs' shared plumbing, and the small ones: `workers`, `models`, `user`, `kudos transfer`.

Every client verb reads `HORDE_URL` (default http://127.0.0.1:7001) and `HORDE_API_KEY` (default the
anonymous key), which `--url` and `--api-key` override, and takes `--json` (the final answer as JSON on
stdout, for scripts). Exit codes: 0 success; 1 the horde refused the call, could not be reached, or the
request faulted (the message and rc go to stderr, and to stdout as JSON with `--json`); 2 a usage error.
`horde.client` (httpx, pydantic) is imported only when a verb runs, so `horde --help` stays quick.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

if TYPE_CHECKING:
    from pydantic import BaseModel

    from horde.client import HordeClient, HordeError
    from horde.contract import ModelType, WorkerType

__all__ = [
    "ANONYMOUS_KEY",
    "DEFAULT_URL",
    "EXIT_INTERRUPTED",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "Target",
    "build_body",
    "client_options",
    "describe_error",
    "echo_json",
    "fail",
    "kudos",
    "models",
    "run_verb",
    "table",
    "target_of",
    "user",
    "workers",
]

DEFAULT_URL = "http://127.0.0.1:7001"
ANONYMOUS_KEY = "0000000000"
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Target:
    """Where a verb talks to and how it answers."""

    url: str
    api_key: str
    json: bool = False
    quiet: bool = False


def client_options[F: Callable[..., Any]](func: F) -> F:
    """`--url`, `--api-key`, `--json` and `-q/--quiet`, passed on as keywords for `target_of`."""
    options = [
        click.option("--url", envvar="HORDE_URL", default=DEFAULT_URL, show_default=True,
                     help="The horde (env HORDE_URL)."),
        click.option("--api-key", envvar="HORDE_API_KEY", default=ANONYMOUS_KEY, show_default="anonymous",
                     help="Your API key (env HORDE_API_KEY)."),
        click.option("--json", "as_json", is_flag=True, help="Print the final answer as JSON on stdout."),
        click.option("-q", "--quiet", is_flag=True, help="No progress on stderr."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def target_of(url: str, api_key: str, as_json: bool, quiet: bool) -> Target:
    return Target(url=url, api_key=api_key, json=as_json, quiet=quiet)


def fail(message: str, *, code: int = EXIT_REFUSED) -> NoReturn:
    click.echo(f"horde: {message}", err=True)
    sys.exit(code)


def echo_json(data: Any) -> None:
    """``data`` (a contract model, a list of them, or plain JSON) on stdout as indented JSON."""
    click.echo(json.dumps(_plain(data), indent=2, ensure_ascii=False))


def _plain(data: Any) -> Any:
    if isinstance(data, list | tuple):
        return [_plain(item) for item in data]
    dump = getattr(data, "model_dump", None)
    return dump(mode="json") if dump is not None else data


def describe_error(error: HordeError, url: str) -> str:
    """One line: what went wrong, with the rc and HTTP status when the horde answered."""
    from horde.client import HordeUnreachable, ValidationFailed

    if isinstance(error, HordeUnreachable):
        return f"cannot reach the horde at {url}: {error.message}"
    message = error.message
    if isinstance(error, ValidationFailed) and error.errors:
        message += ": " + "; ".join(f"{field}: {why}" for field, why in error.errors.items())
    where = ", ".join(part for part in (f"rc {error.rc}" if error.rc else "", _status(error.status)) if part)
    return f"{message} ({where})" if where else message


def _status(status: int) -> str:
    return f"HTTP {status}" if status else ""


def run_verb(target: Target, verb: Callable[[HordeClient], Awaitable[int | None]]) -> NoReturn:
    """Run ``verb`` with a client of ``target`` and exit with its code (errors mapped per the module doc)."""
    from horde.client import HordeClient, HordeError

    async def main() -> int | None:
        async with HordeClient(target.url, target.api_key) as client:
            return await verb(client)

    try:
        code = asyncio.run(main())
    except HordeError as exc:
        if target.json:
            echo_json({"message": exc.message, "rc": exc.rc, "status": exc.status})
        fail(describe_error(exc, target.url))
    except KeyboardInterrupt:
        click.echo("horde: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code or 0)


def build_body[M: BaseModel](model: type[M], data: dict[str, Any]) -> M:
    """A contract body from the command line; a value the contract refuses is a usage error (exit 2)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        fail(f"invalid arguments: {problems}", code=EXIT_USAGE)


def table(rows: Iterable[Sequence[object]], header: Sequence[str]) -> str:
    """Rows as left-aligned columns under ``header``."""
    cells = [[str(h) for h in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


# workers, models, user -----------------------------------------------------------------------------
@click.command()
@click.option("--type", "kind", type=click.Choice(["image", "text", "interrogation"]), help="Only this kind.")
@client_options
def workers(kind: str | None, url: str, api_key: str, as_json: bool, quiet: bool) -> None:
    """List the workers online now."""
    target = target_of(url, api_key, as_json, quiet)

    async def verb(client: HordeClient) -> None:
        found = await client.workers(cast("WorkerType | None", kind))
        if target.json:
            echo_json(found)
            return
        if not found:
            click.echo("no worker is online", err=True)
            return
        rows = [
            (w.name, w.type, w.id, w.threads, w.performance, ", ".join(w.models or w.forms or []))
            for w in found
        ]
        click.echo(table(rows, ("name", "type", "id", "threads", "performance", "models/forms")))

    run_verb(target, verb)


@click.command()
@click.option("--type", "kind", type=click.Choice(["image", "text"]), help="Only this kind (default both).")
@client_options
def models(kind: str | None, url: str, api_key: str, as_json: bool, quiet: bool) -> None:
    """List the models workers serve now, with their queues."""
    target = target_of(url, api_key, as_json, quiet)

    async def verb(client: HordeClient) -> None:
        kinds = cast("list[ModelType]", [kind] if kind else ["image", "text"])
        found = [m for k in kinds for m in await client.models(k)]
        if target.json:
            echo_json(found)
            return
        if not found:
            click.echo("no model is served now", err=True)
            return
        rows = [
            (m.name, m.type, m.count, f"{m.queued:g}", m.jobs, m.eta, f"{m.performance:g}") for m in found
        ]
        click.echo(table(rows, ("name", "type", "workers", "queued", "jobs", "eta", "performance")))

    run_verb(target, verb)


@click.command()
@client_options
def user(url: str, api_key: str, as_json: bool, quiet: bool) -> None:
    """Show the user owning the API key."""
    target = target_of(url, api_key, as_json, quiet)

    async def verb(client: HordeClient) -> None:
        found = await client.find_user()
        if target.json:
            echo_json(found)
            return
        roles = [name for name in ("moderator", "trusted", "pseudonymous") if getattr(found, name)]
        click.echo(f"user:        {found.username}")
        click.echo(f"id:          {found.id}")
        click.echo(f"kudos:       {found.kudos:g}")
        click.echo(f"concurrency: {found.concurrency}")
        click.echo(f"workers:     {found.worker_count}")
        if roles:
            click.echo(f"roles:       {', '.join(roles)}")

    run_verb(target, verb)


# kudos ---------------------------------------------------------------------------------------------
@click.group()
def kudos() -> None:
    """Kudos."""


@kudos.command("verify")
def verify() -> None:
    """Check the ledger (operators): every event sums to zero, balances equal their postings.

    Reads the database of the server settings (HORDE_DATABASE_URL); exits 1 when it finds a problem.
    """
    import asyncio

    from horde.server.serve import verify_kudos

    problems = asyncio.run(verify_kudos())
    for problem in problems:
        click.echo(problem)
    click.echo("the ledger is consistent" if not problems else f"{len(problems)} problem(s)")
    raise SystemExit(1 if problems else 0)


@kudos.command("transfer")
@click.argument("username")
@click.argument("amount", type=click.IntRange(min=1))
@client_options
def transfer(username: str, amount: int, url: str, api_key: str, as_json: bool, quiet: bool) -> None:
    """Give AMOUNT of your kudos to USERNAME (alias#id)."""
    target = target_of(url, api_key, as_json, quiet)

    async def verb(client: HordeClient) -> int:
        from horde.client import NotFound

        try:
            answer = await _transfer(client, username, amount)
        except NotFound as exc:
            if exc.rc not in ("", "NotFound"):  # UserNotFound: the route exists, the recipient does not
                raise
            message = "this horde does not offer kudos transfers (POST /api/v2/kudos/transfer answered 404)"
            if target.json:
                echo_json({"message": message, "rc": exc.rc, "status": exc.status})
            click.echo(f"horde: {message}", err=True)
            return EXIT_REFUSED
        if target.json:
            echo_json(answer)
        else:
            click.echo(f"transferred {float(answer.get('transferred', amount)):g} kudos to {username}")
        return 0

    run_verb(target, verb)


async def _transfer(client: HordeClient, username: str, amount: int) -> dict[str, Any]:
    transferred = await client.transfer_kudos(username, amount)
    return {"transferred": transferred}
