"""The live quota map: the versioned contract between the operator (writer) and the gateways (readers).

Redis layout:

- ``quota_map`` (hash): field = tenant id (the value clients send as ``X-Api-Key``), value = a JSON
  object ``{"v": 1, "requests": 50}``.
- ``quota_map:rev`` (string): an integer the writer increments in the same ``MULTI`` as every change
  to the hash. Gateways poll it every second and reload the hash when it moves (and every 30 s
  regardless), so a change reaches every replica within 2 s without costing requests a round trip.

Compatibility rules, because the operator and the gateways are upgraded separately:

- Adding optional fields keeps ``v``; readers ignore fields they do not know.
- A change that old readers would misread raises ``v``. Readers skip entries with a ``v`` they do not
  support (the tenant then falls back to ``TENANT_QUOTAS``/``DEFAULT_QUOTA``) and say so in the log,
  so upgrade the gateways before the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["MAP_KEY", "REV_KEY", "SCHEMA_VERSION", "TenantEntry", "decode_entry", "encode_entry"]

MAP_KEY = "quota_map"
REV_KEY = "quota_map:rev"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class TenantEntry:
    """One tenant's settings in the live map."""

    requests: int


def encode_entry(entry: TenantEntry) -> bytes:
    """The hash value a writer stores for ``entry``."""
    return orjson.dumps({"v": SCHEMA_VERSION, "requests": entry.requests})


def decode_entry(raw: bytes | str) -> TenantEntry:
    """Parse one hash value; raise ``ValueError`` naming the problem when it cannot be used."""
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = data.get("v")
    if version != SCHEMA_VERSION:
        raise ValueError(f"unsupported schema version {version!r} (this gateway reads {SCHEMA_VERSION})")
    requests = data.get("requests")
    if not isinstance(requests, int) or isinstance(requests, bool) or requests < 0:
        raise ValueError(f"'requests' must be a non-negative integer, got {requests!r}")
    return TenantEntry(requests=requests)
