"""Text prompts: screened only when the operator turns it on (the reference screens image prompts only);
a filter change reaches other nodes through the Redis relay."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from horde.server.kit.notify import Notifier
from horde.server.redis import RedisHealth, RedisRelay
from tests.helpers import V2

FILTERS = [{"regex": r"\bchild\b", "filter_type": 10}, {"regex": r"\bnude\b", "filter_type": 20}]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"filter_text_prompts": True}


async def test_text_prompts_when_turned_on(client: httpx.AsyncClient, api_key: str) -> None:
    for body in FILTERS:
        assert (await client.put(f"{V2}/filters", json=body, headers={"apikey": api_key})).status_code == 200
    request = {"prompt": "a c h i l d, nude", "params": {"max_length": 32}}
    refused = await client.post(f"{V2}/generate/text/async", json=request, headers={"apikey": api_key})
    assert refused.status_code == 400 and refused.json()["rc"] == "CorruptPrompt"
    request["prompt"] = "a story about a lighthouse"
    timed_out = await client.post(f"{V2}/generate/text/async", json=request, headers={"apikey": api_key})
    assert timed_out.status_code == 403 and timed_out.json()["rc"] == "TimeoutIP"  # the refusal's timeout
    lifted = await client.request(
        "DELETE", f"{V2}/operations/ipaddr", json={"ipaddr": "127.0.0.1"}, headers={"apikey": api_key}
    )
    assert lifted.status_code == 200, lifted.text
    accepted = await client.post(f"{V2}/generate/text/async", json=request, headers={"apikey": api_key})
    assert accepted.status_code == 202, accepted.text


def test_a_relayed_change_drops_the_cache() -> None:
    notifier = Notifier()
    dropped: list[bool] = []
    notifier.on_filters_changed = lambda: dropped.append(True)
    relay = RedisRelay(None, prefix="t:", notifier=notifier, health=RedisHealth())  # type: ignore[arg-type]
    relay._dispatch(json.dumps({"node": relay.node, "channel": "filters", "value": ""}))
    assert dropped == []  # its own message
    relay._dispatch(json.dumps({"node": "another node", "channel": "filters", "value": ""}))
    assert dropped == [True]
