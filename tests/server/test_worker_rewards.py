"""Worker rewards over the API and the scheduled folds (SEMANTICS.md 4.4-4.5, ADR 0023): escrow and
trust promotion, uptime from check-ins, require_upfront_kudos, allow_downgrade, the activation tax and
what a dry run says it is."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select, update

from horde.server.kit.clock import FakeClock
from horde.server.kit.orm import table
from horde.server.kudos import service as kudos
from horde.server.kudos.scheduled import fold_postings, promote_trusted
from horde.server.state import Horde
from horde.server.teams.models import Team
from horde.server.teams.scheduled import fold_team_events
from horde.server.users.models import User
from horde.server.workers.models import Worker, WorkerCheckIn
from horde.server.workers.scheduled import fold_uptime
from horde.server.workers.uptime import record_checkin
from tests.helpers import V2, webp_b64

ANON = {"apikey": "0000000000"}
REGEN_LATEST = "AI Horde Worker reGen:10.0.0:https://github.com/Haidra-Org/horde-worker-reGen"
workers = table(Worker)
users = table(User)
DAY = 86400.0


async def _user(client: httpx.AsyncClient, name: str, kudos_: float, **extra: Any) -> dict[str, Any]:
    body = {
        "username": name,
        "oauth_id": f"oauth-{name}",
        "kudos": kudos_,
        "moderator": False,
        "trusted": False,
    }
    body.update(extra)
    response = await client.post(f"{V2}/dev/test-user", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def _money(horde: Horde, user_id: str | int) -> tuple[int, int]:
    """(balance, escrow) in hundredths, after a fold."""
    await fold_postings(horde)
    async with horde.db.autocommit() as conn:
        return await kudos.balance_of(conn, int(user_id)), await kudos.escrow_of(conn, int(user_id))


async def _image_job(client: httpx.AsyncClient, requester: str, owner: str, name: str) -> float:
    body = {"prompt": "a lighthouse", "params": {"width": 512, "height": 512, "steps": 20, "n": 1}}
    accepted = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": requester})
    assert accepted.status_code == 202, accepted.text
    pop = {"name": name, "models": ["stable_diffusion"], "bridge_agent": REGEN_LATEST}
    job = (await client.post(f"{V2}/generate/pop", json=pop, headers={"apikey": owner})).json()
    assert job["id"], job
    result = {"id": job["id"], "generation": webp_b64(), "state": "ok", "seed": 1}
    submitted = await client.post(f"{V2}/generate/submit", json=result, headers={"apikey": owner})
    assert submitted.status_code == 200, submitted.text
    reward: float = submitted.json()["reward"]
    return reward


async def test_an_untrusted_owner_earns_half_in_escrow_until_promoted(
    client: httpx.AsyncClient, horde: Horde, clock: FakeClock, api_key: str
) -> None:
    owner = await _user(client, "novice", 0)
    start = await _money(horde, owner["user_id"])
    reward = await _image_job(client, api_key, owner["api_key"], "novice worker")
    balance, escrow = await _money(horde, owner["user_id"])
    paid = round(reward * 100)  # the latest reGen: x1.0
    assert (balance - start[0], escrow) == (paid - paid // 2, paid // 2)
    details = (await client.get(f"{V2}/users/{owner['user_id']}", headers={"apikey": api_key})).json()
    assert details["evaluating_kudos"] == paid // 2 / 100 and details["trusted"] is False
    async with horde.db.transaction() as conn:
        await conn.execute(
            update(workers).where(workers.c.user_id == int(owner["user_id"])).values(paused=True)
        )
    # no threshold (the reference's default): never promoted
    assert await promote_trusted(horde) == 0
    horde.settings.kudos_trust_threshold = 0.1
    assert await promote_trusted(horde) == 0  # the account is not a week old yet
    clock.advance(7 * DAY + 1)
    assert await promote_trusted(horde) == 1
    assert await _money(horde, owner["user_id"]) == (balance + escrow, 0)
    async with horde.db.autocommit() as conn:
        assert await conn.scalar(select(users.c.trusted).where(users.c.id == int(owner["user_id"]))) is True
        paused = await conn.scalar(select(workers.c.paused).where(workers.c.user_id == int(owner["user_id"])))
        assert paused is False
        assert await kudos.verify(conn) == []
    assert await promote_trusted(horde) == 0  # nothing left to move


async def test_a_suspicious_owner_is_not_promoted(
    client: httpx.AsyncClient, horde: Horde, clock: FakeClock, api_key: str
) -> None:
    from horde.server.users.models import Suspicion
    from horde.server.users.principal import Principal
    from horde.server.users.service import report_suspicion

    owner = await _user(client, "shady", 0)
    await _image_job(client, api_key, owner["api_key"], "shady worker")
    async with horde.db.transaction() as conn:
        principal = await horde.users.by_key(conn, owner["api_key"])
        assert isinstance(principal, Principal)
        for reason in list(Suspicion)[:5]:
            await report_suspicion(conn, user=principal, reason=reason)
    horde.settings.kudos_trust_threshold = 0.1
    clock.advance(8 * DAY)
    assert await promote_trusted(horde) == 0
    assert (await _money(horde, owner["user_id"]))[1] > 0


async def test_uptime_is_folded_from_check_ins_and_paid_per_period(
    client: httpx.AsyncClient, horde: Horde, clock: FakeClock, api_key: str
) -> None:
    owner = await _user(client, "uptimer", 0, trusted=True)
    novice = await _user(client, "uptime novice", 0)
    team = (
        await client.post(f"{V2}/teams", json={"name": "Uptime Team"}, headers={"apikey": owner["api_key"]})
    ).json()["id"]
    ids = {}
    for who, name in ((owner, "uptime worker"), (novice, "novice uptime worker")):
        pop = {"name": name, "models": ["stable_diffusion"], "bridge_agent": REGEN_LATEST}
        empty = await client.post(f"{V2}/generate/pop", json=pop, headers={"apikey": who["api_key"]})
        assert empty.status_code == 200, empty.text  # the first pop writes the first check-in
        async with horde.db.autocommit() as conn:
            ids[name] = await conn.scalar(select(workers.c.id).where(workers.c.name == name))
    joined = await client.put(
        f"{V2}/workers/{ids['uptime worker']}", json={"team": team}, headers={"apikey": owner["api_key"]}
    )
    assert joined.status_code == 200, joined.text
    start = clock.now()
    async with horde.db.transaction() as conn:
        for offset in (200, 400, 600, 1000):  # online to 600 s, then away 400 s: a fresh period
            for worker_id in ids.values():
                await record_checkin(conn, worker_id=worker_id, now=start + offset, active=True, reward=56.0)
    before = [await _money(horde, who["user_id"]) for who in (owner, novice)]
    assert await fold_uptime(horde) == 10
    async with horde.db.autocommit() as conn:
        assert await conn.scalar(select(table(WorkerCheckIn).c.id).limit(1)) is None  # folded, deleted
        rows = (await conn.execute(select(workers.c.uptime, workers.c.kudos_uptime, workers.c.name))).all()
    assert {row.name: (row.uptime, row.kudos_uptime) for row in rows} == {
        "uptime worker": (600, 5600),
        "novice uptime worker": (600, 5600),
    }
    after = [await _money(horde, who["user_id"]) for who in (owner, novice)]
    assert after[0] == (before[0][0] + 5600, 0)  # trusted: to the balance
    assert after[1] == (before[1][0], 5600)  # untrusted: all of it in escrow
    await fold_team_events(horde)
    async with horde.db.autocommit() as conn:
        assert (
            await conn.scalar(select(table(Team).c.uptime).where(table(Team).c.id == uuid.UUID(team))) == 600
        )
        assert await kudos.verify(conn) == []
    details = (await client.get(f"{V2}/workers/{ids['uptime worker']}")).json()
    assert details["uptime"] == 600 and details["kudos_details"]["uptime"] == 56


async def test_require_upfront_kudos_skips_requesters_who_could_not_pay(
    client: httpx.AsyncClient, horde: Horde
) -> None:
    poor = await _user(client, "poor", 0)
    owner = await _user(client, "picky", 0, trusted=True)
    body = {"prompt": "a lantern", "params": {"width": 512, "height": 512, "steps": 20}}
    for key in (ANON, {"apikey": poor["api_key"]}):
        assert (await client.post(f"{V2}/generate/async", json=body, headers=key)).status_code == 202
    pop = {"name": "picky worker", "models": ["stable_diffusion"], "require_upfront_kudos": True,
           "bridge_agent": REGEN_LATEST}  # fmt: skip
    empty = (await client.post(f"{V2}/generate/pop", json=pop, headers={"apikey": owner["api_key"]})).json()
    assert empty["id"] is None and empty["skipped"].get("kudos") == 2, empty
    rich = await _user(client, "rich", 1000)
    assert (
        await client.post(f"{V2}/generate/async", json=body, headers={"apikey": rich["api_key"]})
    ).status_code == 202
    taken = (await client.post(f"{V2}/generate/pop", json=pop, headers={"apikey": owner["api_key"]})).json()
    assert taken["id"] is not None
    plain = {**pop, "name": "plain worker", "require_upfront_kudos": False}
    for _ in range(2):  # a worker that does not ask for it takes the others
        popped = await client.post(f"{V2}/generate/pop", json=plain, headers={"apikey": owner["api_key"]})
        assert popped.json()["id"] is not None


async def test_allow_downgrade_shrinks_what_would_need_upfront_kudos(client: httpx.AsyncClient) -> None:
    big = {"prompt": "a harbour", "params": {"width": 1536, "height": 1536, "steps": 60}}
    refused = await client.post(f"{V2}/generate/async", json=big, headers=ANON)
    assert (refused.status_code, refused.json()["rc"]) == (403, "KudosUpfront")
    accepted = await client.post(f"{V2}/generate/async", json={**big, "allow_downgrade": True}, headers=ANON)
    assert accepted.status_code == 202, accepted.text
    owner = await _user(client, "downgrade worker owner", 0, trusted=True)
    pop = {"name": "big worker", "models": ["stable_diffusion"], "max_pixels": 2048 * 2048,
           "bridge_agent": REGEN_LATEST}  # fmt: skip
    job = (await client.post(f"{V2}/generate/pop", json=pop, headers={"apikey": owner["api_key"]})).json()
    assert (job["payload"]["width"], job["payload"]["height"], job["payload"]["ddim_steps"]) == (
        1024,
        1024,
        40,
    )
    text = {"prompt": "Once", "params": {"max_length": 1024, "max_context_length": 2048}}
    refused = await client.post(f"{V2}/generate/text/async", json=text, headers=ANON)
    assert (refused.status_code, refused.json()["rc"]) == (403, "KudosUpfront")
    accepted = await client.post(
        f"{V2}/generate/text/async", json={**text, "allow_downgrade": True}, headers=ANON
    )
    assert accepted.status_code == 202, accepted.text
    text_pop = {"name": "long text worker", "max_length": 2048, "max_context_length": 4096}
    job = (
        await client.post(f"{V2}/generate/text/pop", json=text_pop, headers={"apikey": owner["api_key"]})
    ).json()
    assert job["payload"]["max_length"] == 512


async def test_allow_downgrade_keeps_what_the_requester_can_pay(
    client: httpx.AsyncClient, horde: Horde
) -> None:
    rich = await _user(client, "rich downgrader", 5000)
    big = {
        "prompt": "a harbour",
        "params": {"width": 1536, "height": 1536, "steps": 30},
        "allow_downgrade": True,
    }
    accepted = await client.post(f"{V2}/generate/async", json=big, headers={"apikey": rich["api_key"]})
    assert accepted.status_code == 202, accepted.text
    async with horde.db.autocommit() as conn:
        assert await kudos.held_of(conn, int(rich["user_id"])) > 0  # held at its full size


async def test_the_activation_tax_is_charged_at_queueing_and_kept(
    client: httpx.AsyncClient, horde: Horde
) -> None:
    user = await _user(client, "taxpayer", 100)
    start = (await _money(horde, user["user_id"]))[0]
    body = {"prompt": "a bridge", "params": {"width": 512, "height": 512, "steps": 20}}
    accepted = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": user["api_key"]})
    assert accepted.status_code == 202, accepted.text
    assert (await _money(horde, user["user_id"]))[0] == start - 100
    cancelled = await client.delete(f"{V2}/generate/status/{accepted.json()['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert (await _money(horde, user["user_id"]))[0] == start - 100  # never refunded
    async with horde.db.autocommit() as conn:
        assert await kudos.verify(conn) == []


async def test_a_dry_run_says_it_is_an_estimate_and_counts_the_activation_tax(
    client: httpx.AsyncClient, api_key: str
) -> None:
    body = {"prompt": "a bridge", "params": {"width": 512, "height": 512, "steps": 50}, "dry_run": True}
    plain = await client.post(f"{V2}/generate/async", json=body, headers={"apikey": api_key})
    assert plain.status_code == 200, plain.text
    assert "estimate" in plain.json()["message"]
    extras = {
        **body, "source_image": webp_b64(), "source_processing": "remix",
        "extra_source_images": [{"image": webp_b64()}, {"image": webp_b64()}],
    }  # fmt: skip
    remix = await client.post(f"{V2}/generate/async", json=extras, headers={"apikey": api_key})
    assert remix.status_code == 200, remix.text
    source = await client.post(
        f"{V2}/generate/async", json={**body, "source_image": webp_b64(), "source_processing": "remix"},
        headers={"apikey": api_key},
    )  # fmt: skip
    assert remix.json()["kudos"] == round(source.json()["kudos"] + 10, 2)  # +5 per extra source image


async def test_escrow_is_not_spendable(client: httpx.AsyncClient, horde: Horde) -> None:
    """Holds, priority and transfers read the spendable account only (on PostgreSQL inside
    `horde_queue_request`), folded or not."""
    user = await _user(client, "escrow only", 0)
    async with horde.db.transaction() as conn:
        legs = [
            kudos.Leg(amount=500_000, user_id=int(user["user_id"]), escrow=True),
            kudos.Leg(-500_000, system="x"),
        ]
        await kudos.post(conn, legs=legs, reason="generation", now=horde.clock.now())
    big = {"prompt": "a harbour", "params": {"width": 1536, "height": 1536, "steps": 30}}
    for fold in (False, True):
        if fold:
            await fold_postings(horde)
        refused = await client.post(f"{V2}/generate/async", json=big, headers={"apikey": user["api_key"]})
        assert (refused.status_code, refused.json()["rc"]) == (403, "KudosUpfront")
        other = await _user(client, f"recipient {fold}", 0)
        transfer = {"username": other["alias"], "amount": 10}
        moved = await client.post(f"{V2}/kudos/transfer", json=transfer, headers={"apikey": user["api_key"]})
        assert (moved.status_code, moved.json()["rc"]) == (400, "KudosTransferNotEnough")
    assert await _money(horde, user["user_id"]) == (0, 500_000)
