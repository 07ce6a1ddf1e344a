"""Pseudonyms for tenants and the privacy mode that decides where they replace tenant ids (pure).

``PRIVACY_MODE=standard`` keeps the replaced gateway's layout for tenant names a person chose:
Redis keys name the tenant (``quota:demo``, ``quota:tenantA``). In the open auth mode the tenant is
whatever API key the client sends, and an SDK configured with a real key (``sk-proj-…``) would
write that key into key names in clear, so an id that is not shaped like a chosen name (see
:func:`chosen_name`) is written as its pseudonym instead (``quota:3f2a9c1e0b7d``, the same value
its metric label and access-log field carry). ``strict`` writes every identifier that leaves the
process (Redis keys, logs, metric labels, span attributes) as a keyed pseudonym, so neither a key
nor a tenant name is stored anywhere in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

__all__ = ["PrivacyMode", "chosen_name", "storage_id", "tenant_hash"]

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


# A chosen name: a letter, then at most 31 letters, digits, `.`, `_` or `-`.
_NAME_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,31}")
# What credentials have and chosen names do not: a long run of letters and digits (random key
# material), a credential prefix (OpenAI `sk-`, `sk-proj-`, `sk-svcacct-`, Anthropic `sk-ant-`,
# Stripe-style `pk_`/`rk_`), or the shape of a pseudonym itself (12 hex digits).
_RANDOM_RUN = re.compile(r"[A-Za-z0-9]{16}")
_CREDENTIAL_PREFIXES = ("sk-", "sk_", "pk-", "pk_", "rk-", "rk_")
_PSEUDONYM = re.compile(r"[0-9a-f]{12}")
# A rate-limit key the gateway derived itself (``AUTH_MODE=keys``: a prefix of the key's HMAC).
_DERIVED_KEY = re.compile(r"key:[0-9a-f]{16}")


def chosen_name(value: str) -> bool:
    """True when ``value`` reads as a tenant name a person chose, not as a credential: a letter,
    then at most 31 letters, digits, ``.``, ``_`` or ``-``; no run of 16 letters and digits; no
    credential prefix (``sk-``, ``sk_``, ``pk-``, ``pk_``, ``rk-``, ``rk_``, any case); not 12 hex
    digits (a pseudonym's shape); and at most 4 switches between lower case, upper case and digits
    within its words (``mlPlatformV2`` has 4; random key material has about one every other
    character: 7 in 10,000 random 22-character keys have 4 or fewer)."""
    return (
        _NAME_SHAPE.fullmatch(value) is not None
        and _RANDOM_RUN.search(value) is None
        and not value.lower().startswith(_CREDENTIAL_PREFIXES)
        and _PSEUDONYM.fullmatch(value) is None
        and _class_switches(value) <= _MAX_CLASS_SWITCHES
    )


_MAX_CLASS_SWITCHES = 4


def _class_switches(value: str) -> int:
    """How often consecutive characters of a word change between lower case, upper case and digit
    (``.``, ``_`` and ``-`` separate words)."""
    switches, previous = 0, ""
    for char in value:
        kind = "l" if char.islower() else "u" if char.isupper() else "d" if char.isdigit() else ""
        if kind and previous and kind != previous:
            switches += 1
        previous = kind
    return switches


def storage_id(mode: PrivacyMode, key: bytes | None) -> Callable[[str], str]:
    """How tenant ids and rate-limit keys are written into Redis key names and log lines.

    ``standard``: a :func:`chosen_name` (or a rate-limit key the gateway derived from a key's HMAC,
    ``key:<16 hex>``) as it is, anything else (an API key, a client address) as
    :func:`tenant_hash` under ``key``. ``strict``: always as :func:`tenant_hash` under ``key``. The
    pseudonym is the same as in metric labels, so ``quota:<label>`` is the counter of the tenant
    labelled ``<label>``.
    """
    if mode == "strict":
        return lambda value: tenant_hash(value, key)

    @lru_cache(maxsize=16_384)  # as tenant_hash: tenants repeat, ever-new ones cost a miss each
    def standard(value: str) -> str:
        return value if chosen_name(value) or _DERIVED_KEY.fullmatch(value) else tenant_hash(value, key)

    return standard
