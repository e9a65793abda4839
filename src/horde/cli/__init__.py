"""The `horde` command: serve, worker, scheduler, up, db, users, kudos, and the client verbs."""

from horde.cli.main import main

__all__ = ["main"]
