"""The client's IP: the socket peer, unless that peer is a trusted proxy."""

from __future__ import annotations

import httpx
import pytest

from horde.server.app import create_app
from horde.server.clientip import TrustedProxies
from horde.server.state import Horde
from tests.helpers import V2


def test_forwarded_for_only_from_trusted_peers() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "::1"])
    assert proxies.client_of("203.0.113.9", ["127.0.0.1"]) == "203.0.113.9"  # not a proxy: ignored
    assert proxies.client_of("10.0.0.2", ["198.51.100.7"]) == "198.51.100.7"
    # the client wrote the leftmost hops itself: the first untrusted hop from the right is the client
    assert proxies.client_of("10.0.0.2", ["127.0.0.1", "198.51.100.7", "10.0.0.3"]) == "198.51.100.7"
    assert proxies.client_of("::1", ["garbage", "198.51.100.8"]) == "198.51.100.8"
    assert proxies.client_of("10.0.0.2", ["198.51.100.9", "not-an-ip"]) == "10.0.0.2"
    assert proxies.client_of("10.0.0.2", []) == "10.0.0.2"
    assert TrustedProxies([]).client_of("10.0.0.2", ["198.51.100.7"]) == "10.0.0.2"


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": ["10.0.0.0/8"]}])
async def test_limits_count_the_forwarded_client(horde: Horde) -> None:
    horde.settings.test_ratelimit_disabled = False
    app = create_app(horde.settings, horde=horde)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.2", 1), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as proxy:
        one = {"X-Forwarded-For": "198.51.100.1"}
        answers = [(await proxy.get(f"{V2}/generate/check/x", headers=one)).status_code for _ in range(11)]
        other = await proxy.get(f"{V2}/generate/check/x", headers={"X-Forwarded-For": "198.51.100.2"})
        refused = await proxy.post(f"{V2}/dev/test-user", json={}, headers=one)
    assert answers[-1] == 429 and 429 not in answers[:10]  # 10 a second per client
    assert other.status_code != 429  # another client behind the same proxy
    assert refused.status_code == 403  # the test-user route never answers a proxied request
