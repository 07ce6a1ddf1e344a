"""Registered API keys (``AUTH_MODE=keys``): the live key map and how a presented key is checked (pure).

Redis layout (written by the operator from the Secrets that TenantQuotas reference, read by the
gateways with the quota map, on the same revision counter ``quota_map:rev``):

- ``api_keys`` (hash): field = ``HMAC-SHA256(KEY_HASH_SECRET, key)`` as 64 lowercase hex digits,
  value = the tenant id the key belongs to. Raw keys are stored nowhere.

A presented key is never compared with a stored one: its keyed digest is looked up. What the lookup's
timing could reveal is about an HMAC output the caller cannot steer without the secret, which is what
makes the check constant-time in the sense that matters (the digest itself is computed in constant
time by ``hmac``). Without the secret, a stolen copy of the map cannot be turned back into keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from llm_gateway.errors import QuotaBackendUnavailable, Unauthorized

__all__ = ["KEYS_KEY", "KeyRing", "key_digest"]

KEYS_KEY = "api_keys"
_DIGEST = re.compile(r"[0-9a-f]{64}")


def key_digest(secret: bytes, api_key: bytes) -> str:
    """The map field for ``api_key``: its HMAC-SHA256 under ``secret``, in hex.

    The same as ``printf %s "$KEY" | openssl dgst -sha256 -hmac "$KEY_HASH_SECRET"``.
    """
    return hmac.new(secret, api_key, hashlib.sha256).hexdigest()


class KeyRing:
    """The gateway's copy of the key map; swapped whole by :meth:`replace`."""

    __slots__ = ("_secret", "_tenants")

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._tenants: dict[str, str] | None = None  # None until the map has been read once

    def replace(self, entries: Mapping[str, str]) -> list[str]:
        """Load ``entries`` (digest → tenant); return the fields that are not digests (skipped)."""
        tenants = {}
        bad = []
        for digest, tenant in entries.items():
            if _DIGEST.fullmatch(digest) and tenant:
                tenants[digest] = tenant
            else:
                bad.append(digest[:16])
        self._tenants = tenants
        return bad

    def __len__(self) -> int:
        return len(self._tenants or ())

    @property
    def loaded(self) -> bool:
        """True once the map has been read (it may be empty)."""
        return self._tenants is not None

    def identify(self, api_key: bytes | None) -> tuple[str, str]:
        """``(tenant, key id)`` for a registered key; ``key id`` is a digest prefix, safe to store.

        Raises :class:`Unauthorized` (401) for a missing or unknown key, without echoing it, and
        :class:`QuotaBackendUnavailable` (503) while the map has never been read (Redis unreachable
        since start-up): then no key can be told from another.
        """
        if not api_key:
            raise Unauthorized(
                "an API key is required (X-Api-Key or Authorization: Bearer)", code="missing_api_key"
            )
        tenants = self._tenants
        if tenants is None:
            raise QuotaBackendUnavailable("the API key map is not loaded yet; try again shortly")
        digest = key_digest(self._secret, api_key)
        tenant = tenants.get(digest)
        if tenant is None:
            raise Unauthorized("the API key is not valid", code="invalid_api_key")
        return tenant, f"key:{digest[:16]}"
