"""Parsers for the compact string forms the settings accept (pure, no environment access).

Each parser raises ``ValueError`` with a message that names the offending part, so the settings
layer can report ``VARIABLE: message`` in one line.
"""

from __future__ import annotations

import re

# Tenant ids are API keys or CR-given names: printable, no separators used by the format itself.
_TENANT_ID = re.compile(r"[^\s,=]+")


def split_list(text: str) -> list[str]:
    """Split ``a, b,c,`` into ``["a", "b", "c"]``: whitespace trimmed, empty items dropped."""
    return [item for item in (part.strip() for part in text.split(",")) if item]


def parse_tenant_quotas(text: str) -> dict[str, int]:
    """Parse ``tenantA=5,tenantB=8`` into ``{"tenantA": 5, "tenantB": 8}``.

    Blank input means no overrides. Whitespace around pairs is ignored, a trailing comma is allowed.
    Every pair must be ``tenant=limit`` with a non-negative integer limit (0 blocks the tenant);
    a tenant named twice is an error rather than a silent last-one-wins.
    """
    quotas: dict[str, int] = {}
    for raw_pair in text.split(","):
        pair = raw_pair.strip()
        if not pair:
            continue
        tenant, sep, limit = (part.strip() for part in pair.partition("="))
        if not sep or not _TENANT_ID.fullmatch(tenant):
            raise ValueError(f"expected tenant=limit pairs separated by commas, got {pair!r}")
        if not limit.isdigit():
            raise ValueError(f"limit for tenant {tenant!r} must be a non-negative integer, got {limit!r}")
        if tenant in quotas:
            raise ValueError(f"tenant {tenant!r} is listed twice")
        quotas[tenant] = int(limit)
    return quotas


def parse_listen_addr(text: str) -> tuple[str, int]:
    """Parse ``host:port`` (``0.0.0.0:8080``, ``[::]:8080``, ``localhost:9000``) into its parts."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    return host, int(port)
