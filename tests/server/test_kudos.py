"""The kudos ledger: postings sum to zero, balances fold from them, floors forgive debits."""

from __future__ import annotations

import httpx
import pytest

from horde.server.kudos import service as kudos
from horde.server.kudos.scheduled import fold_postings
from horde.server.state import Horde
from horde.server.users import service as users
from tests.helpers import V2


async def _user(horde: Horde, name: str, oauth_id: str) -> int:
    async with horde.db.transaction() as conn:
        new = await users.create_user(conn, username=name, oauth_id=oauth_id, pepper=horde.pepper, now=0.0)
    return new.user.id


async def test_balances_fold_from_postings(horde: Horde) -> None:
    alice = await _user(horde, "alice", "oauth-alice")
    async with horde.db.transaction() as conn:
        await kudos.post(conn, legs=[kudos.Leg(5000, user_id=alice), kudos.Leg(-5000, system="admin")],
                         reason="admin", now=0.0)  # fmt: skip
        assert await kudos.balance_of(conn, alice) == 5000  # visible before the fold
    assert await fold_postings(horde) == 1
    async with horde.db.autocommit() as conn:
        assert await kudos.balance_of(conn, alice) == 5000
        assert await kudos.verify(conn) == []


async def test_debits_stop_at_the_floor(horde: Horde) -> None:
    bob = await _user(horde, "bob", "oauth-bob")  # an OAuth user: floor 25 kudos
    async with horde.db.transaction() as conn:
        await kudos.post(conn, legs=[kudos.Leg(3000, user_id=bob), kudos.Leg(-3000, system="admin")],
                         reason="admin", now=0.0)  # fmt: skip
        await kudos.post(conn, legs=[kudos.Leg(-2000, user_id=bob), kudos.Leg(2000, system="horde")],
                         reason="generation", now=1.0)  # fmt: skip
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        assert await kudos.balance_of(conn, bob) == kudos.OAUTH_FLOOR
        assert await kudos.verify(conn) == []
        totals = await kudos.totals_by_reason(conn, bob)
    assert totals["floor"] == 2500 - 1000  # the forgiven part of the debit


async def test_anonymous_use_is_never_charged(horde: Horde) -> None:
    async with horde.db.transaction() as conn:
        await kudos.post(conn, legs=[kudos.Leg(-500, user_id=0), kudos.Leg(500, system="horde")],
                         reason="generation", now=0.0)  # fmt: skip
        assert await kudos.balance_of(conn, 0) == 0
        assert await kudos.verify(conn) == []


async def test_a_completed_job_moves_kudos(client: httpx.AsyncClient, api_key: str, horde: Horde) -> None:
    keyed = {"apikey": api_key}
    worker_owner = (
        await client.post(f"{V2}/dev/test-user", json={"oauth_id": "owner", "username": "w"})
    ).json()
    model = "Aeala/Enterredaas-33b"  # 33e9 parameters in the text model reference
    request = {"prompt": "p" * 2048, "params": {"max_length": 512}, "models": [model]}
    await client.post(f"{V2}/generate/text/async", json=request, headers=keyed)
    job = (
        await client.post(f"{V2}/generate/text/pop", json={"name": "paid worker", "models": [model]},
                          headers={"apikey": worker_owner["api_key"]})
    ).json()  # fmt: skip
    submitted = await client.post(
        f"{V2}/generate/text/submit", json={"id": job["id"], "generation": "x" * 400},
        headers={"apikey": worker_owner["api_key"]},
    )  # fmt: skip
    # SEMANTICS 4.2, by hand: 100 tokens; the prompt counts 512 (capped at max_length) so
    # c = 1.2 + 2.2**-1; 100 * (33/13)**0.2 * 33/125 * c * 0.3 (unvalidated backend) = 15.7877
    reward = 1579
    assert submitted.json()["reward"] == pytest.approx(15.79, abs=0.01)
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        requester = await kudos.balance_of(conn, 1)
        owner = await kudos.balance_of(conn, int(worker_owner["user_id"]))
        assert await kudos.verify(conn) == []
    # the worker has no bridge the horde knows: x0.75 (SEMANTICS 4.5); the owner is trusted (no escrow)
    assert owner == 1_000_000 + round(reward * 0.75)
    # the reward plus the one-kudo horde tax, and the activation tax (SEMANTICS 4.4)
    assert requester == 1_000_000 - reward - 100 - 100


@pytest.mark.committed  # the command opens its own engine
async def test_verify_command_reads_the_ledger(horde: Horde, monkeypatch: pytest.MonkeyPatch) -> None:
    from horde.server.serve import verify_kudos

    carol = await _user(horde, "carol", "oauth-carol")
    async with horde.db.transaction() as conn:
        await kudos.post(conn, legs=[kudos.Leg(700, user_id=carol), kudos.Leg(-700, system="admin")],
                         reason="admin", now=0.0)  # fmt: skip
    await fold_postings(horde)
    monkeypatch.setenv("HORDE_DATABASE_URL", horde.settings.effective_database_url)
    assert await verify_kudos() == []
    async with horde.db.transaction() as conn:  # break a balance behind the ledger's back
        await conn.execute(kudos.balances.update().values(balance=kudos.balances.c.balance + 1))
    problems = await verify_kudos()
    assert problems
    assert "carol" not in problems[0]
    assert f"user {carol}" in problems[0]
