"""The kudos folder (kudos/service.py `fold`): the floor each kind of user keeps, the forgiven part it
posts from `system:floor`, and batching (a bounded batch per fold, the rest left for the next one, the
balance read in between still exact). Expected balances are worked out by hand in hundredths."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from horde.server.kudos import service as kudos
from horde.server.kudos.scheduled import fold_postings
from horde.server.state import Horde
from tests.helpers import V2


async def _user(client: httpx.AsyncClient, name: str, kudos_: float, oauth_id: str | None = None) -> int:
    body = {"username": name, "oauth_id": oauth_id or f"oauth-{name}", "kudos": kudos_}
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["user_id"])


async def _move(horde: Horde, user_id: int, amount: int) -> None:
    """One event: `amount` hundredths to (or, negative, from) the user, against `system:test`."""
    async with horde.db.transaction() as conn:
        legs = [kudos.Leg(amount, user_id=user_id), kudos.Leg(-amount, system="test")]
        await kudos.post(conn, legs=legs, reason="test", now=horde.clock.now())


async def _folded_balance(horde: Horde, user_id: int) -> int | None:
    async with horde.db.autocommit() as conn:
        value = await conn.scalar(select(kudos.balances.c.balance).where(kudos.balances.c.user_id == user_id))
    return None if value is None else int(value)


async def _settled(horde: Horde, user_id: int) -> tuple[int, int]:
    """(balance, forgiven by the floor so far) once everything is folded; the ledger verifies."""
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        assert await kudos.verify(conn) == []
        reasons = await kudos.totals_by_reason(conn, user_id)
        return await kudos.balance_of(conn, user_id), reasons.get("floor", 0)


def test_user_floor() -> None:
    assert kudos.user_floor(0, "anon") == -5000
    assert kudos.user_floor(5, "pseudo:1234") == 1400
    assert kudos.user_floor(5, "oauth-alice") == 2500
    assert kudos.user_floor(5, "xpseudo:1234") == 2500  # the prefix, not a substring


async def test_a_pseudonymous_user_keeps_14_kudos(client: httpx.AsyncClient, horde: Horde) -> None:
    uid = await _user(client, "pseudo", 20, oauth_id="pseudo:3f2a")
    await _move(horde, uid, -1000)  # 2000 - 1000 = 1000, below the floor 1400: 400 forgiven
    assert await _settled(horde, uid) == (1400, 400)
    await _move(horde, uid, -300)  # at the floor already: all of it forgiven
    assert await _settled(horde, uid) == (1400, 700)


async def test_an_oauth_user_keeps_25_kudos(client: httpx.AsyncClient, horde: Horde) -> None:
    uid = await _user(client, "olivia", 30)
    await _move(horde, uid, -1000)  # 3000 - 1000 = 2000, floor 2500: 500 forgiven
    assert await _settled(horde, uid) == (2500, 500)
    rich = await _user(client, "rich", 100)
    await _move(horde, rich, -1000)  # 10000 - 1000 = 9000: above the floor, nothing forgiven
    assert await _settled(horde, rich) == (9000, 0)
    await _move(horde, rich, -6500)  # 9000 - 6500 = 2500: exactly the floor, nothing forgiven
    assert await _settled(horde, rich) == (2500, 0)


async def test_the_floor_in_one_fold_with_credits(client: httpx.AsyncClient, horde: Horde) -> None:
    uid = await _user(client, "mixed", 20, oauth_id="pseudo:77")
    await fold_postings(horde)
    # one fold sees +300 and -1000: 2000 + 300 - 1000 = 1300, the floor 1400 forgives 100
    await _move(horde, uid, 300)
    await _move(horde, uid, -1000)
    assert await _settled(horde, uid) == (1400, 100)
    # a user below the floor (set there by a moderator) is not lifted by a debit: 1000 - 500 forgiven 500
    low = await _user(client, "low", 10, oauth_id="pseudo:78")
    await fold_postings(horde)
    await _move(horde, low, -500)
    assert await _settled(horde, low) == (1000, 500)
    # credits alone are never "forgiven" anything, even below the floor
    await _move(horde, low, 100)
    assert await _settled(horde, low) == (1100, 500)


async def test_the_floor_posts_from_system_floor(client: httpx.AsyncClient, horde: Horde) -> None:
    uid = await _user(client, "poor", 20, oauth_id="pseudo:9")
    await _move(horde, uid, -1000)
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        rows = (
            await conn.execute(
                select(kudos.postings.c.account, kudos.postings.c.user_id, kudos.postings.c.amount)
                .where(kudos.postings.c.reason == "floor")
                .order_by(kudos.postings.c.amount)
            )
        ).all()
    assert [tuple(r) for r in rows] == [("system:floor", None, -400), ("user", uid, 400)]


async def test_the_anonymous_user_is_never_charged(client: httpx.AsyncClient, horde: Horde) -> None:
    async with horde.db.autocommit() as conn:
        before = await kudos.balance_of(conn, 0)
    await _move(horde, 0, -700)
    await _move(horde, 0, 200)  # credits still count
    assert (await _settled(horde, 0))[0] == before + 200
    async with horde.db.autocommit() as conn:
        floor_paid = await conn.scalar(
            select(func.sum(kudos.postings.c.amount)).where(kudos.postings.c.account == "system:floor")
        )
    assert floor_paid == -700


async def test_a_fold_takes_a_bounded_batch(client: httpx.AsyncClient, horde: Horde) -> None:
    uid = await _user(client, "batch", 100)
    await fold_postings(horde)
    for _ in range(7):
        await _move(horde, uid, 100)
    sizes: list[int] = []
    for _ in range(4):
        async with horde.db.transaction() as conn:
            sizes.append(await kudos.fold(conn, now=horde.clock.now(), limit=3))
            # the balance read between folds counts folded and unfolded postings once each
            assert await kudos.balance_of(conn, uid) == 10_700
        assert await _folded_balance(horde, uid) == 10_000 + 100 * sum(sizes)
    assert sizes == [3, 3, 1, 0]  # user legs only: the system legs are never folded into a balance


async def test_a_fold_marks_every_row_of_a_big_batch(client: httpx.AsyncClient, horde: Horde) -> None:
    """More rows than one UPDATE ... IN (...) chunk of 1000: all marked folded, none folded twice."""
    uids = [await _user(client, f"many{i}", 50) for i in range(3)]
    await fold_postings(horde)
    legs: list[kudos.Leg] = [kudos.Leg(1, user_id=uids[i % 3]) for i in range(2500)]
    async with horde.db.transaction() as conn:
        await kudos.post(conn, legs=[*legs, kudos.Leg(-2500, system="test")], reason="test", now=0.0)
    async with horde.db.transaction() as conn:
        assert await kudos.fold(conn, now=horde.clock.now()) == 2500
    async with horde.db.transaction() as conn:
        assert await kudos.fold(conn, now=horde.clock.now()) == 0
        assert await kudos.verify(conn) == []
    expected = [5000 + 834, 5000 + 833, 5000 + 833]  # 2500 legs of 1 dealt round-robin
    assert [await _folded_balance(horde, u) for u in uids] == expected


async def test_verify_finds_a_wrong_balance(client: httpx.AsyncClient, horde: Horde) -> None:
    uid = await _user(client, "tampered", 50)
    await fold_postings(horde)
    async with horde.db.transaction() as conn:
        await conn.execute(kudos.balances.update().where(kudos.balances.c.user_id == uid).values(balance=1))
    async with horde.db.autocommit() as conn:
        problems = await kudos.verify(conn)
    assert problems == [f"user {uid}: balance 1 but folded postings sum to a different total"]
