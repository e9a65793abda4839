"""`horde users ...`: user accounts, made on the server's own database (like `horde db upgrade`)."""

from __future__ import annotations

import asyncio

import click


@click.group()
def users() -> None:
    """User accounts on this horde's database."""


async def _create(username: str, *, moderator: bool, trusted: bool) -> tuple[str, str]:
    import uuid

    from horde.server.cluster.secrets import load_secrets
    from horde.server.config import Settings
    from horde.server.db import open_database
    from horde.server.kit.clock import Clock
    from horde.server.migrate import upgrade_to_head
    from horde.server.users import service
    from horde.server.users.details import check_username

    settings = Settings()
    name = check_username(username, settings=settings)
    db = open_database(settings.effective_database_url, pool_size=1)
    try:
        await upgrade_to_head(db)
        pepper = (await load_secrets(db, settings)).pepper
        async with db.transaction() as conn:
            new = await service.create_user(
                conn, username=name, oauth_id=f"local:{uuid.uuid4()}", pepper=pepper, now=Clock().now(),
                concurrency=settings.default_concurrency, moderator=moderator, trusted=trusted,
            )  # fmt: skip
    finally:
        await db.dispose()
    return new.user.alias, new.api_key


@users.command("create")
@click.option("--username", required=True, help="The user's name (up to 30 characters).")
@click.option("--moderator", is_flag=True, help="Make the user a moderator.")
@click.option("--trusted", is_flag=True, help="Make the user trusted.")
def create(username: str, moderator: bool, trusted: bool) -> None:
    """Create a user and print its API key (shown once; only its hash is stored)."""
    from horde.server.errors import HordeError

    try:
        alias, key = asyncio.run(_create(username, moderator=moderator, trusted=trusted))
    except HordeError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"user: {alias}")
    click.echo(f"apikey: {key}")
