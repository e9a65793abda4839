"""Nodes that need only the shared services: secrets from the shared database, and the node registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from horde.server.cluster.models import ServerNode, ServerSecret
from horde.server.cluster.nodes import NodeConflict, NodeRegistry, registered
from horde.server.cluster.secrets import PEPPER, load_secrets, shared_secret
from horde.server.db import Database, open_database
from horde.server.images.backends import open_storage
from horde.server.kit.clock import FakeClock
from horde.server.kit.orm import utc
from horde.server.migrate import upgrade_to_head
from tests.conftest import make_settings


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    db = open_database(postgres_url, pool_size=8)
    await upgrade_to_head(db)
    async with db.transaction() as conn:
        await conn.execute(delete(ServerSecret))
        await conn.execute(delete(ServerNode))
    yield db
    await db.dispose()


async def test_nodes_with_their_own_data_dirs_agree_on_the_secrets(pg: Database, tmp_path: Path) -> None:
    settings = [make_settings(pg.url, tmp_path / f"node{i}", api_key_pepper="") for i in range(4)]
    loaded = await asyncio.gather(*(load_secrets(pg, s, clock=FakeClock()) for s in settings))
    assert len({s.pepper for s in loaded}) == 1
    assert len({s.url_signing for s in loaded}) == 1
    assert loaded[0].pepper and loaded[0].url_signing
    assert not (tmp_path / "node0" / "secrets").exists()  # nothing on a node's own disk
    again = await load_secrets(pg, make_settings(pg.url, tmp_path / "later", api_key_pepper=""))
    assert again == loaded[0]


async def test_a_configured_secret_wins_over_the_shared_one(pg: Database, tmp_path: Path) -> None:
    shared = await shared_secret(pg, PEPPER, configured="", data_dir=tmp_path, clock=FakeClock())
    mine = await shared_secret(pg, PEPPER, configured="from-settings", data_dir=tmp_path, clock=FakeClock())
    assert mine == "from-settings" != shared


async def test_the_first_node_after_an_upgrade_publishes_its_old_pepper(pg: Database, tmp_path: Path) -> None:
    (tmp_path / "old" / "secrets").mkdir(parents=True)
    (tmp_path / "old" / "secrets" / PEPPER).write_text("pepper-from-before\n")
    first = await shared_secret(pg, PEPPER, configured="", data_dir=tmp_path / "old", clock=FakeClock())
    second = await shared_secret(pg, PEPPER, configured="", data_dir=tmp_path / "new", clock=FakeClock())
    assert first == second == "pepper-from-before"


async def test_sqlite_keeps_its_secrets_in_the_data_dir(sqlite_url: str, tmp_path: Path) -> None:
    db = open_database(sqlite_url, pool_size=1)
    try:
        settings = make_settings(sqlite_url, tmp_path, api_key_pepper="")
        first = await load_secrets(db, settings)
        assert (tmp_path / "secrets" / PEPPER).read_text().strip() == first.pepper
        assert await load_secrets(db, settings) == first
    finally:
        await db.dispose()


async def test_a_node_with_another_store_is_refused_while_one_runs(pg: Database) -> None:
    clock = FakeClock()
    async with registered(pg, clock, storage="s3:http://a/bucket") as first:
        async with registered(pg, clock, storage="s3:http://a/bucket") as twin:
            assert twin.id != first.id
        with pytest.raises(NodeConflict, match="local:other"):
            await NodeRegistry(pg, clock, storage="local:other").join()
    # both left: a node with any store may start now
    async with registered(pg, clock, storage="local:other"):
        pass


async def test_a_node_that_stopped_answering_does_not_block_others(pg: Database) -> None:
    clock = FakeClock()
    crashed = NodeRegistry(pg, clock, storage="local:crashed", ttl=60)
    await crashed.join()
    crashed._beat.cancel()  # type: ignore[union-attr]  # as if the process had been killed
    async with pg.transaction() as conn:  # its last heartbeat is older than the ttl
        await conn.execute(update(ServerNode).values(seen_at=utc(clock.now() - 61)))
    async with registered(pg, clock, storage="local:new"):
        pass


async def test_local_directories_are_told_apart_and_a_shared_one_is_recognised(tmp_path: Path) -> None:
    def identity(data_dir: Path) -> str:
        settings = make_settings("sqlite+aiosqlite://", data_dir, public_url="http://x")
        return open_storage(settings, signing=b"k")[1]

    assert identity(tmp_path / "a") == identity(tmp_path / "a")  # the same directory, seen twice
    assert identity(tmp_path / "a") != identity(tmp_path / "b")
