"""The Profane* rcs of SEMANTICS.md 2: worker names, bridge agents and worker info, usernames, contacts
and admin comments, team names and infos, with the packaged word list and an operator's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from horde.server.config import Settings
from horde.server.errors import HordeError
from horde.server.kit.profanity import WordList, load_words, refuse_profane
from horde.server.state import Horde
from horde.server.teams.models import Team
from horde.server.workers.models import Worker
from tests.helpers import V2, new_user

REGEN = "AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen"


def test_words_phrases_leetspeak_and_camel_case() -> None:
    words = WordList(["darn", "heck off", "# not a comment here"])
    assert words.contains_profanity("well DARN it")
    assert words.contains_profanity("d4rn")  # leetspeak
    assert words.contains_profanity("MyDarnWorker")  # camelCase splits into words
    assert words.contains_profanity("please heck-off now")  # a phrase across punctuation
    assert not words.contains_profanity("heck")  # half a phrase is not the phrase
    assert words.contains_profanity("darns")  # a plural
    assert not words.contains_profanity("darned")  # whole words only: no Scunthorpe problem
    assert not words.contains_profanity("")


def test_the_packaged_list_and_an_operators_file(tmp_path: Path) -> None:
    packaged = load_words("")
    assert packaged.contains_profanity("Sh1t happens") and not packaged.contains_profanity("Scunthorpe")
    extra = tmp_path / "words.txt"
    extra.write_text("# local words\nzorblax\n\nflib flob\n")
    own = load_words(str(extra))
    assert own.contains_profanity("a Zorblax worker") and own.contains_profanity("flib_flob")
    assert own.contains_profanity("shit")  # the operator's list extends the packaged one
    settings = Settings(profanity_words_file=str(extra))
    with pytest.raises(HordeError) as raised:
        refuse_profane(settings, "zorblax", rc="ProfaneTeamName", what="team name")
    assert (raised.value.rc, raised.value.status_code) == ("ProfaneTeamName", 400)
    refuse_profane(settings, None, rc="ProfaneTeamName", what="team name")  # nothing sent: nothing refused


def _refused(response: httpx.Response, rc: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["rc"] == rc, response.text


async def _count(horde: Horde, model: Any) -> int:
    async with horde.db.autocommit() as conn:
        return int(await conn.scalar(select(func.count()).select_from(model)) or 0)


async def test_worker_name_and_bridge_agent_on_pop(
    client: httpx.AsyncClient, horde: Horde, api_key: str
) -> None:
    headers = {"apikey": api_key}
    pop = f"{V2}/generate/pop"
    _refused(
        await client.post(pop, json={"name": "Fucking Fast Worker"}, headers=headers), "ProfaneWorkerName"
    )
    _refused(await client.post(f"{V2}/generate/text/pop", json={"name": "sh1t worker"}, headers=headers),
             "ProfaneWorkerName")  # fmt: skip
    agent = "Bullshit Bridge:1.0:https://example.org"
    refused = await client.post(pop, json={"name": "clean worker", "bridge_agent": agent}, headers=headers)
    _refused(refused, "ProfaneBridgeAgent")
    assert await _count(horde, Worker) == 0
    ok = await client.post(pop, json={"name": "clean worker", "bridge_agent": REGEN}, headers=headers)
    assert ok.status_code == 200, ok.text
    # a known worker changing to a profane agent is refused too, and its record keeps the old agent
    _refused(await client.post(pop, json={"name": "clean worker", "bridge_agent": agent}, headers=headers),
             "ProfaneBridgeAgent")  # fmt: skip
    found = (await client.get(f"{V2}/workers/name/clean worker")).json()
    assert found["bridge_agent"] == REGEN


async def test_worker_name_and_info_on_put(client: httpx.AsyncClient, api_key: str) -> None:
    headers = {"apikey": api_key}
    assert (
        await client.post(f"{V2}/generate/pop", json={"name": "clean worker"}, headers=headers)
    ).is_success
    wid = (await client.get(f"{V2}/workers/name/clean worker")).json()["id"]
    put = f"{V2}/workers/{wid}"
    _refused(await client.put(put, json={"name": "Twat Worker"}, headers=headers), "ProfaneWorkerName")
    _refused(
        await client.put(put, json={"info": "runs on a shitty GPU"}, headers=headers), "ProfaneWorkerInfo"
    )
    after = (await client.get(f"{V2}/workers/{wid}")).json()
    assert after["name"] == "clean worker" and not after.get("info")
    ok = await client.put(put, json={"info": "runs on a shiny GPU"}, headers=headers)
    assert ok.status_code == 200 and ok.json() == {"info": "runs on a shiny GPU"}


async def test_username_contact_and_admin_comment(client: httpx.AsyncClient, api_key: str) -> None:
    key = await new_user(client, "plain")
    me = (await client.get(f"{V2}/find_user", headers={"apikey": key})).json()
    put = f"{V2}/users/{me['id']}"
    own = {"apikey": key}
    _refused(await client.put(put, json={"username": "BigDickEnergy"}, headers=own), "ProfaneUserName")
    _refused(await client.put(put, json={"contact": "wanker@example.org"}, headers=own), "ProfaneUserContact")
    mod = {"apikey": api_key}
    _refused(await client.put(put, json={"admin_comment": "a real c0ck"}, headers=mod), "ProfaneAdminComment")
    after = (await client.get(f"{V2}/find_user", headers={"apikey": key})).json()
    assert after["username"] == me["username"]
    ok = await client.put(put, json={"username": "Scunthorpe fan"}, headers=own)
    assert ok.status_code == 200, ok.text


async def test_registration_refuses_a_profane_username(client: httpx.AsyncClient) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    refused = await client.post("/register", content="username=motherfucker", headers=form)
    assert refused.status_code == 400 and "profanity" in refused.text


async def test_team_name_and_info(client: httpx.AsyncClient, horde: Horde, api_key: str) -> None:
    headers = {"apikey": api_key}
    _refused(
        await client.post(f"{V2}/teams", json={"name": "Team Bitch"}, headers=headers), "ProfaneTeamName"
    )
    body = {"name": "Team Clean", "info": "we are such assholes"}
    _refused(await client.post(f"{V2}/teams", json=body, headers=headers), "ProfaneTeamInfo")
    assert await _count(horde, Team) == 0
    created = await client.post(f"{V2}/teams", json={"name": "Team Clean"}, headers=headers)
    assert created.status_code == 200, created.text
    patch = f"{V2}/teams/{created.json()['id']}"
    _refused(await client.patch(patch, json={"name": "Team Shit"}, headers=headers), "ProfaneTeamName")
    _refused(await client.patch(patch, json={"info": "p1ss off"}, headers=headers), "ProfaneTeamInfo")
