"""Fixtures shared by every suite: databases (PostgreSQL and SQLite), Redis, a horde, an API client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from horde.server.app import build_horde, close_horde, create_app
from horde.server.catalog import ModelCatalog, load_catalog
from horde.server.config import Settings
from horde.server.db import Database
from horde.server.kit.clock import FakeClock
from horde.server.state import Horde
from tests import isolation, services
from tests.s3 import S3Server, start_s3

# the shared contract beside the repository (a worktree may sit one level deeper than the main checkout)
SHARED = next(
    (p / "shared" for p in Path(__file__).resolve().parents[2:] if (p / "shared" / "api").is_dir()),
    Path(__file__).resolve().parents[2] / "shared",
)
MODEL_REFERENCE = SHARED / "api" / "model-reference"


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    try:
        db = await services.create_postgres_database()
    except (OSError, Exception) as exc:
        services.unavailable("PostgreSQL", exc)
    yield db.url
    await services.drop_postgres_database(db)


@pytest.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    try:
        index = await services.claim_redis_index()
    except (OSError, Exception) as exc:
        services.unavailable("Redis", exc)
    yield f"{services.REDIS_URL}/{index}"
    await services.release_redis_index(index)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server on a free port, for the whole run (each test makes its own bucket)."""
    server = start_s3(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'horde.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"], scope="session")
def database_url(request: pytest.FixtureRequest) -> str:
    """Each suite that takes this runs once on SQLite and once on PostgreSQL."""
    fixture = "postgres_url" if request.param == "postgresql" else "sqlite_url"
    url: str = request.getfixturevalue(fixture)
    return url


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "test_apikeys": True,
        "test_ratelimit_disabled": True,
        "allow_private_source_urls": True,
        "run_scheduler": False,
        "db_pool_size": 5,
        "public_url": "http://testserver",
        "api_key_pepper": "test-pepper",
        "model_reference_image": str(MODEL_REFERENCE / "stable_diffusion.json"),
        "model_reference_text": str(MODEL_REFERENCE / "text_db.json"),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
async def catalog() -> ModelCatalog:
    """The model reference lists, read once per run."""
    async with httpx.AsyncClient() as http:
        return await load_catalog(
            str(MODEL_REFERENCE / "stable_diffusion.json"), str(MODEL_REFERENCE / "text_db.json"), http
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a module to change settings for its tests."""
    return {}


@pytest.fixture
async def horde(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
    clock: FakeClock,
    catalog: ModelCatalog,
    settings_overrides: dict[str, Any],
) -> AsyncIterator[Horde]:
    """A horde on a database of the test's own: a rolled-back transaction on PostgreSQL, a fresh copy of
    the migrated file on SQLite; `@pytest.mark.committed` tests get the run's shared database, cleaned
    (tests/isolation.py)."""
    await isolation.migrate_once(database_url)
    committed = request.node.get_closest_marker("committed") is not None
    db: Database | None = None
    url = database_url
    if database_url.startswith("sqlite"):
        url = isolation.sqlite_copy(database_url, tmp_path)
    elif not committed:
        db = await isolation.RolledBackDatabase.open(database_url)
    settings = make_settings(url, tmp_path, **settings_overrides)
    horde = await build_horde(settings, clock=clock, migrate=False, catalog=catalog, db=db)
    shared = committed and not horde.db.is_sqlite
    if shared:
        await isolation.clean(horde.db)
    try:
        yield horde
    finally:
        if shared:  # leave the shared database as the rolled-back tests expect it: empty
            await isolation.clean(horde.db)
        await close_horde(horde)


@pytest.fixture
async def client(horde: Horde) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(horde.settings, horde=horde)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 12345), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def api_key(client: httpx.AsyncClient) -> str:
    """A trusted moderator's key with 10,000 kudos."""
    response = await client.post("/api/v2/dev/test-user", json={})
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key
