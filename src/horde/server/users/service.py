"""Users: creation, API keys, the anonymous user, the dev test user and the users pages.

Invariants: API keys exist only as peppered hashes; user 0 is the anonymous user; every kudos change
goes through `kudos.service.post`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from horde.contract.rc import RC
from horde.server.errors import HordeError
from horde.server.kit.orm import table, utc
from horde.server.kudos import service as kudos
from horde.server.users.keys import hash_api_key, new_api_key
from horde.server.users.models import ANON_USER_ID, REPEATABLE_SUSPICIONS, Suspicion, User, UserSuspicion
from horde.server.users.principal import Principal

users = table(User)
suspicions = table(UserSuspicion)


@dataclass(frozen=True)
class NewUser:
    user: User
    api_key: str
    created: bool


async def get_user(conn: AsyncConnection, user_id: int) -> User | None:
    """The user with this id, or None."""
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    return User(**row._mapping) if row else None


async def create_user(
    conn: AsyncConnection,
    *,
    username: str,
    oauth_id: str,
    pepper: str,
    now: float,
    concurrency: int = 30,
    **roles: bool,
) -> NewUser:
    """Create a user with a fresh API key (shown once, stored hashed)."""
    key = new_api_key()
    values = {
        "username": username,
        "oauth_id": oauth_id,
        "api_key_hash": hash_api_key(key, pepper=pepper),
        "created_at": utc(now),
        "last_active": utc(now),
        "concurrency": concurrency,
        **roles,
    }
    user_id = await conn.scalar(insert(users).values(**values).returning(users.c.id))
    user = await get_user(conn, int(user_id or 0))
    assert user is not None
    return NewUser(user=user, api_key=key, created=True)


async def upsert_test_user(
    conn: AsyncConnection,
    *,
    username: str,
    oauth_id: str,
    moderator: bool,
    trusted: bool,
    kudos_hundredths: int,
    pepper: str,
    now: float,
) -> NewUser:
    """The reference's dev test user: create or refresh by oauth_id, new key, kudos set absolutely."""
    row = (await conn.execute(select(users.c.id).where(users.c.oauth_id == oauth_id))).first()
    if row is not None and row.id == ANON_USER_ID:  # its key is public: never a moderator's
        raise HordeError(RC.AnonForbiddenUserMod, "The anonymous user cannot be a test user")
    if row is None:
        new = await create_user(
            conn, username=username, oauth_id=oauth_id, pepper=pepper, now=now,
            moderator=moderator, trusted=trusted,
        )  # fmt: skip
    else:
        key = new_api_key()
        await conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(
                username=username,
                api_key_hash=hash_api_key(key, pepper=pepper),
                moderator=moderator,
                trusted=trusted,
            )
        )
        user = await get_user(conn, row.id)
        assert user is not None
        new = NewUser(user=user, api_key=key, created=False)
    delta = kudos_hundredths - await kudos.balance_of(conn, new.user.id)
    if delta:
        legs = [kudos.Leg(amount=delta, user_id=new.user.id), kudos.Leg(amount=-delta, system="admin")]
        await kudos.post(conn, legs=legs, reason="admin", now=now)
    return new


async def list_users(conn: AsyncConnection, *, page: int, sort: str, page_size: int = 25) -> list[User]:
    """One page of users, by kudos or by age."""
    if page > 10000:
        return []
    balances = kudos.balances
    stmt = (
        select(users)
        .outerjoin(balances, balances.c.user_id == users.c.id)
        .where(users.c.id != 0, users.c.deleted.is_(False))  # deleted users are hidden (and wiped ones)
    )
    if sort == "age":
        stmt = stmt.order_by(users.c.id)
    else:
        stmt = stmt.order_by(func.coalesce(balances.c.balance, 0).desc(), users.c.id)
    rows = await conn.execute(stmt.offset((max(page, 1) - 1) * page_size).limit(page_size))
    return [User(**row._mapping) for row in rows]


async def report_suspicion(conn: AsyncConnection, *, user: Principal, reason: Suspicion) -> None:
    """Record a reason to suspect a user (once, unless the reason accumulates); the anonymous user and
    trusted users are never suspicious (SEMANTICS.md 2 and 5)."""
    if user.is_anon or user.is_trusted:
        return
    where = (suspicions.c.user_id == user.id) & (suspicions.c.reason == int(reason))
    if reason in REPEATABLE_SUSPICIONS:
        done = await conn.execute(update(suspicions).where(where).values(count=suspicions.c.count + 1))
        if done.rowcount:
            return
    try:
        async with conn.begin_nested():
            await conn.execute(insert(suspicions).values(user_id=user.id, reason=int(reason), count=1))
    except IntegrityError:
        pass  # counted already (a once-only reason, or a concurrent first report)


async def make_trusted(conn: AsyncConnection, *, user_id: int) -> None:
    """Give a user the trusted role (a promotion by escrowed rewards, SEMANTICS.md 4.5)."""
    await conn.execute(update(users).where(users.c.id == user_id).values(trusted=True))


async def suspicion_of(conn: AsyncConnection, user_id: int) -> int:
    """How suspicious a user is: the sum of its reasons' counts (5 or more: suspicious)."""
    total = await conn.execute(select(func.coalesce(func.sum(suspicions.c.count), 0)).where(
        suspicions.c.user_id == user_id
    ))  # fmt: skip
    return int(total.scalar() or 0)
