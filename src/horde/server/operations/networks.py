"""Addresses and ranges as the countermeasures key them (pure functions, no I/O).

An IPv6 client controls at least its /64, so an IPv6 address is timed out, blocked and looked up as
its /64. Moderators' ranges narrower than the limits below are accepted; wider ones are refused, since
a typo there would lock out a continent.
"""

from __future__ import annotations

import ipaddress

from horde.contract.rc import RC
from horde.server.errors import HordeError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MIN_PREFIX = {4: 16, 6: 32}  # the widest range a moderator may time out
IPV6_HOST_PREFIX = 64


def parse_address(value: str) -> Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def host_network(address: Address) -> Network:
    """The range one client holds: the address itself (IPv4) or its /64 (IPv6)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return ipaddress.ip_network(address.ipv4_mapped)
        return ipaddress.ip_network((address, IPV6_HOST_PREFIX), strict=False)
    return ipaddress.ip_network(address)


def client_network(ip: str) -> Network | None:
    """The range a client's IP stands for, or None when it is not an IP (a test transport's name)."""
    address = parse_address(ip)
    return host_network(address) if address is not None else None


def parse_timeout_target(value: str) -> Network:
    """A moderator's IP or CIDR as the range to time out; 400 BadRequest when malformed or too wide."""
    text = value.strip()
    if "/" not in text:
        address = parse_address(text)
        if address is None:
            raise HordeError(RC.BadRequest, f"'{value}' is not a valid IP address or CIDR")
        return host_network(address)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise HordeError(RC.BadRequest, f"'{value}' is not a valid IP address or CIDR") from None
    if network.prefixlen < MIN_PREFIX[network.version]:
        raise HordeError(
            RC.BadRequest,
            f"CIDR {network} is too wide: at most a /{MIN_PREFIX[network.version]} can be timed out",
        )
    if network.version == 6 and network.prefixlen > IPV6_HOST_PREFIX:
        return ipaddress.ip_network((network.network_address, IPV6_HOST_PREFIX), strict=False)
    return network
