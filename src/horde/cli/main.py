"""The `horde` command group and its server-side verbs (they import the server lazily)."""

from __future__ import annotations

import asyncio
import contextlib

import click

from horde.cli.users import users
from horde.cli.worker import worker


@click.group()
@click.version_option(package_name="horde")
def main() -> None:
    """horde: a self-hostable AI Horde (server, worker, client)."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 7001).")
@click.option(
    "--workers", default=1, type=click.IntRange(1, 64), show_default=True,
    help="Server processes sharing the port (PostgreSQL only).",
)  # fmt: skip
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the API server (schema brought to the newest migration first)."""
    from horde.server.serve import run_server

    run_server(host=host, port=port, workers=workers)


@main.command()
def scheduler() -> None:
    """Run the periodic sweeps (lease expiry, request expiry, webhooks) as their own process."""
    from horde.server.serve import run_scheduler

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_scheduler())


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest migration, and nothing else."""
    from horde.server.serve import upgrade_database

    asyncio.run(upgrade_database())
    click.echo("database is at the newest migration")


@main.command("problem-jobs")
@click.option("--page", default=1, type=click.IntRange(min=1), help="50 jobs a page, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON list on stdout.")
def problem_jobs(page: int, as_json: bool) -> None:
    """Jobs workers reported as CSAM (moderators; reads HORDE_DATABASE_URL). Results are never kept."""
    import json

    from horde.server.serve import list_problem_jobs

    jobs = asyncio.run(list_problem_jobs(page))
    if as_json:
        click.echo(json.dumps(jobs))
        return
    for job in jobs:
        click.echo(f"{job['reported']}  {job['kind']:5}  user {job['user_id']}  {job['ipaddr']}  {job['id']}")
        click.echo(f"    {job['prompt']}")
    if not jobs:
        click.echo("no problem jobs")


main.add_command(users)
main.add_command(worker)

from horde.cli.client_verbs import kudos, models, user, workers  # noqa: E402
from horde.cli.generate import generate, interrogate, status  # noqa: E402
from horde.cli.up import up  # noqa: E402

for command in (up, generate, interrogate, status, workers, models, user, kudos):
    main.add_command(command)
