"""Raid mode and IP reputation from the operator's list, on SQLite and PostgreSQL (SEMANTICS.md 3.3, 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from horde.server.kit.clock import FakeClock
from horde.server.operations.reputation import LocalList
from tests.helpers import V2, new_user
from tests.server.test_modes import _error, _put_modes, _text, _text_pop


@pytest.fixture
def unsafe_ips(tmp_path: Path) -> Path:
    path = tmp_path / "unsafe-ips.txt"
    path.write_text("# the operator's list\n127.0.0.0/30\nnot an address\n", encoding="utf-8")
    return path


@pytest.fixture
def settings_overrides(unsafe_ips: Path) -> dict[str, Any]:
    return {"unsafe_ips_file": str(unsafe_ips)}


async def test_raid_mode_and_unsafe_ips(client: httpx.AsyncClient, api_key: str, unsafe_ips: Path) -> None:
    # the test client is 127.0.0.1: on the operator's unsafe list
    user = await new_user(client, "requester")
    trusted = await new_user(client, "trusted", trusted=True)
    vpn = await new_user(client, "vpn_owner")
    vpn_id = (await client.get(f"{V2}/find_user", headers={"apikey": vpn})).json()["id"]
    made = await client.put(f"{V2}/users/{vpn_id}", json={"vpn": True}, headers={"apikey": api_key})
    assert made.status_code == 200, made.text
    body = {"name": "unsafe worker", "models": ["test-model"]}
    refused = await client.post(f"{V2}/generate/text/pop", json=body, headers={"apikey": user})
    _error(refused, 403, "UnsafeIP")  # untrusted owner on an unsafe IP, outside raid mode
    await _text_pop(client, trusted, "trusted worker")
    await _text_pop(client, vpn, "vpn worker")
    assert (await _text(client, user)).status_code == 202  # requesters are refused only in raid mode
    assert (await _put_modes(client, api_key, {"raid_mode": True})).status_code == 200
    _error(await _text(client, user), 403, "UntrustedUnsafeIP")
    assert (await _text(client, trusted)).status_code == 202
    await _text_pop(client, user, "unsafe worker")  # raid mode tolerates unsafe workers
    registered = await client.post("/register", data={"username": "newcomer"})
    assert registered.status_code == 403 and "closed" in registered.text
    assert (await _put_modes(client, api_key, {"raid_mode": False})).status_code == 200
    assert (await client.post("/register", data={"username": "newcomer"})).status_code == 201


async def test_the_local_list_follows_its_file(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "unsafe.txt"
    reputation = LocalList(str(path), clock)
    assert await reputation.is_unsafe("192.0.2.1") is False  # no file yet: nobody is unsafe
    path.write_text("192.0.2.0/24 # a bad range\n2001:db8::/48\n", encoding="utf-8")
    assert await reputation.is_unsafe("192.0.2.1") is False  # not re-read within `recheck`
    clock.advance(5)
    assert await reputation.is_unsafe("192.0.2.1") is True
    assert await reputation.is_unsafe("2001:db8:0:5::1") is True
    assert await reputation.is_unsafe("198.51.100.1") is False
    assert await reputation.is_unsafe("testclient") is False
    assert await LocalList("", clock).is_unsafe("192.0.2.1") is False
