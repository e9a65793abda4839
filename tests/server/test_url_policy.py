"""The destination policy of source-image and webhook URLs: IPv6 forms that embed an IPv4 address
are judged by that address (NAT64, 6to4 and IPv4-compatible reach private IPv4 on some hosts)."""

from __future__ import annotations

import pytest

from horde.server.errors import HordeError
from horde.server.images.sources import SourcePolicy, resolve_checked

STRICT = SourcePolicy(allow_private=False, timeout=2.0, max_bytes=1024)


@pytest.mark.parametrize(
    "host",
    [
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
        "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254 (cloud metadata)
        "[64:ff9b:1::c0a8:101]",  # local-use NAT64 of 192.168.1.1
        "[2002:a00:1::]",  # 6to4 of 10.0.0.1
        "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
        "[::a00:1]",  # IPv4-compatible 10.0.0.1
        "[::7f00:1]",  # IPv4-compatible 127.0.0.1
        "[::ffff:10.0.0.1]",  # IPv4-mapped
        "[::1]",
        "127.0.0.1",
        "10.1.2.3",
        "100.64.0.1",
    ],
)
async def test_private_addresses_are_refused(host: str) -> None:
    with pytest.raises(HordeError) as refused:
        await resolve_checked(f"http://{host}/image.png", STRICT)
    assert refused.value.rc == "SourceImageUrlInvalid"
    assert "private or local" in refused.value.message


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("[64:ff9b::808:808]", "64:ff9b::808:808"),  # NAT64 of 8.8.8.8: public
        ("[2002:808:808::1]", "2002:808:808::1"),  # 6to4 of 8.8.8.8
        ("8.8.8.8", "8.8.8.8"),
        ("[2606:4700:4700::1111]", "2606:4700:4700::1111"),
    ],
)
async def test_public_addresses_pass(host: str, address: str) -> None:
    assert await resolve_checked(f"http://{host}/image.png", STRICT) == address
