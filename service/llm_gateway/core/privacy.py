"""Pseudonyms for tenants and the privacy mode that decides where they replace tenant ids (pure).

``PRIVACY_MODE=standard`` keeps the replaced gateway's layout: Redis keys name the tenant
(``quota:{tenant}``), which in the open auth mode is the client's API key. ``strict`` keeps every
identifier that leaves the process (Redis keys, logs, metric labels, span attributes) a keyed
pseudonym, so neither a key nor a tenant name is stored anywhere in clear.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

__all__ = ["PrivacyMode", "storage_id", "tenant_hash"]

PrivacyMode = Literal["standard", "strict"]


# A request needs its tenant's pseudonym up to four times (Redis keys, metric label, span, access
# line) and tenants repeat: the cache turns ~2.5 µs of HMAC into a dict lookup. Bounded, so clients
# sending ever-new keys cost a cache miss each, as without it, and no memory beyond the bound.
@lru_cache(maxsize=16_384)
def tenant_hash(tenant: str, key: bytes | None = None) -> str:
    """A stable pseudonym for a tenant id: the first 12 hex digits of its HMAC-SHA256 under ``key``.

    Without a key, of its plain SHA-256 (``printf %s "$KEY" | sha256sum | cut -c1-12``), which anyone
    can recompute for a guessed id; a key (``TENANT_HASH_KEY``) makes low-entropy ids unguessable and
    is rotated by changing it (the pseudonyms change with it).
    """
    if key is None:
        return hashlib.sha256(tenant.encode()).hexdigest()[:12]
    return hmac.new(key, tenant.encode(), hashlib.sha256).hexdigest()[:12]


def _same(value: str) -> str:
    return value


def storage_id(mode: PrivacyMode, key: bytes | None) -> Callable[[str], str]:
    """How tenant ids and rate-limit keys are written into Redis key names and log lines.

    ``standard``: as they are. ``strict``: as :func:`tenant_hash` under ``key`` (the same pseudonym
    as in metric labels, so ``quota:<label>`` is the counter of the tenant labelled ``<label>``).
    """
    if mode == "standard":
        return _same
    return lambda value: tenant_hash(value, key)
