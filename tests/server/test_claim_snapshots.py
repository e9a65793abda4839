"""The compiled claim per kind, against reviewed snapshots (tests/server/claims/*.sql), and the claim's
statement, cache key and bind values derived from one set of condition records.

A change to a matching condition shows here as a diff of the SQL the server sends. To accept one on
purpose: `HORDE_UPDATE_CLAIM_SNAPSHOTS=1 pytest tests/server/test_claim_snapshots.py`, then review the diff.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from horde.server.jobs import matching
from horde.server.jobs.matching import claim
from horde.server.jobs.records import WorkerProfile
from horde.server.workers.capabilities import ALL_CAPS, Cap

SNAPSHOTS = Path(__file__).parent / "claims"
WID = uuid.UUID(int=1)
BASE: dict[str, Any] = {"worker_id": WID, "owner_id": 1, "owner_trusted": True, "caps": int(ALL_CAPS)}
WORKERS: dict[str, dict[str, Any]] = {
    "text": {"models": frozenset({"m1", "m2"}), "max_length": 512, "max_context_length": 4096},
    "text-modelless-slow-untrusted": {"slow": True, "owner_trusted": False},
    "image": {"models": frozenset({"sd"}), "max_pixels": 1024 * 1024, "nsfw": True},
    "image-sfw-blacklist-fewcaps": {"models": frozenset({"sd"}), "nsfw": False, "blacklist": ("cat", "dog"),
                                    "caps": int(Cap.R2)},
    "image-limits-special": {"models": frozenset({"horde_special::ada#1"}), "serves_special": True,
                             "limit_max_steps": True, "allow_unsafe_ip": False},
    "text-softprompts": {"softprompts": ("fantasy", "sci_fi")},
    "alchemy": {"forms": frozenset({"caption", "nsfw"}), "max_tiles": 80},
    "alchemy-no-forms-extra-slow": {"extra_slow": True},
}  # fmt: skip
DIALECTS = {"postgresql": postgresql.asyncpg.dialect(), "sqlite": sqlite.aiosqlite.dialect()}  # type: ignore[no-untyped-call]


def _worker(name: str) -> WorkerProfile:
    return WorkerProfile(**{**BASE, "kind": name.split("-")[0], **WORKERS[name]})


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("name", sorted(WORKERS))
def test_compiled_claim_matches_its_snapshot(name: str, dialect: str) -> None:
    w = _worker(name)
    limit = w.amount if w.kind in matching.ACROSS_REQUESTS else 1
    sql = str(matching.claim_statement(w, limit=limit).statement.compile(dialect=DIALECTS[dialect])) + "\n"
    path = SNAPSHOTS / f"{name}.{dialect}.sql"
    if os.environ.get("HORDE_UPDATE_CLAIM_SNAPSHOTS"):
        path.write_text(sql)
    assert path.exists(), f"no snapshot {path.name}: run with HORDE_UPDATE_CLAIM_SNAPSHOTS=1 and review it"
    assert sql == path.read_text()


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_params_bind_every_parameter_of_the_statement(name: str) -> None:
    w = _worker(name)
    compiled = matching.claim_statement(w).statement.compile(dialect=DIALECTS["postgresql"])
    params = matching.claim_params(w, now=0.0, fallback_model="m1", user_ids=[1])
    missing = {n for n in compiled.positiontup or () if n not in params and n not in compiled.params}
    assert not missing


def test_workers_with_one_key_share_one_statement_text() -> None:
    """The cache key holds everything the SQL's structure depends on: vary the values only."""
    for name in WORKERS:
        w = _worker(name)
        other = WorkerProfile(**{
            **BASE, "kind": w.kind, **WORKERS[name], "worker_id": uuid.uuid4(), "max_length": 80,
            "max_pixels": 64, "max_tiles": 3, "models": frozenset({"x"}) if w.models else frozenset(),
            "forms": frozenset({"x"}) if w.forms else frozenset(),
            "blacklist": tuple(f"w{i}" for i in range(len(w.blacklist))),
            "softprompts": tuple(f"s{i}" for i in range(len(w.softprompts))),
        })  # fmt: skip
        key = matching.claim_key(w, limit=1, by_users=False)
        assert matching.claim_key(other, limit=1, by_users=False) == key
        dialect = DIALECTS["postgresql"]
        first = str(matching.claim_statement(w).statement.compile(dialect=dialect))
        claim._CLAIMS.clear()  # build the other worker's statement afresh, not from the cache
        assert str(matching.claim_statement(other).statement.compile(dialect=dialect)) == first
