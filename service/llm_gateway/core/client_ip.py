"""The client's address, believing ``X-Forwarded-For`` only from trusted proxies (pure).

A client must not choose its own rate-limit bucket: the header is read only when the socket peer is
a trusted proxy, and then from the right, skipping further trusted hops, so the first address not
ours is the one a trusted proxy saw.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["Networks", "client_ip", "parse_networks"]

Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Parse ``10.0.0.0/8, 127.0.0.1, ::1`` (addresses or CIDRs, comma-separated)."""
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return networks


def _trusted(address: str, trusted: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Networks) -> str:
    """The address to rate-limit: ``peer``, unless ``peer`` is trusted and ``forwarded_for`` says more."""
    peer = peer or "unknown"
    if not forwarded_for or not trusted or not _trusted(peer, trusted):
        return peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if hop and not _trusted(hop, trusted):
            return hop
    return peer
