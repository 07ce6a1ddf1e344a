"""Which TenantQuota speaks for a tenant, and what it says (pure: no API, no Redis).

Several TenantQuotas may name the same tenant; the oldest (by creation time, then namespace and name,
so every replica of the operator agrees) wins and the others are reported as conflicting. A spec is
turned into the live map's :class:`~llm_gateway.core.quota_map.TenantEntry`, checked again here so a
spec the schema let through (an older CRD, a cluster without CEL) is refused with a clear reason. The
entry also carries what tenant policies see of the tenant: the spec's ``tier`` and ``groups``, and the
TenantQuota's namespace and labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.core.api_keys import key_digest
from llm_gateway.core.quota_map import TenantEntry, TokenBudget
from llm_gateway.core.tenant import MAX_KEY_LENGTH, is_usable_key

__all__ = [
    "Claim",
    "InvalidSpec",
    "KeyRef",
    "digests_of",
    "entry_from_spec",
    "env_form",
    "key_ref_of",
    "token_budget",
    "winner",
]

# As the CRD's pattern: printable ASCII without space, ',' or '=' (the TENANT_QUOTAS form uses them).
_TENANT = re.compile(r"[!-+\--<>-~]{1,256}")
# As the CRD's pattern for spec.tier and spec.groups: a Kubernetes label value, not empty.
_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_NAME_RULE = "1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
_MAX_GROUPS = 32  # as the CRD's maxItems
DEFAULT_WINDOW_SECS = 60  # the CRD's default, for a spec stored before the default existed


class InvalidSpec(ValueError):
    """A spec the gateway cannot apply; the message names the field."""


@dataclass(frozen=True, slots=True, order=True)
class KeyRef:
    """Where a tenant's API keys are: a key of a Secret in the TenantQuota's namespace."""

    namespace: str
    name: str
    key: str


@dataclass(frozen=True, slots=True, order=True)
class Claim:
    """One TenantQuota's claim on its tenant. Ordering is precedence: the smallest claim wins."""

    created: str  # RFC 3339 in UTC, so string order is time order
    namespace: str
    name: str
    tenant: str
    entry: TenantEntry | None  # None when the spec is invalid
    keys: KeyRef | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def winner(claims: Iterable[Claim]) -> Claim | None:
    """The claim that speaks for its tenant: the oldest valid one."""
    return min((claim for claim in claims if claim.entry is not None), default=None)


def entry_from_spec(spec: Mapping[str, Any], namespace: str, labels: Mapping[str, str]) -> TenantEntry:
    """The live-map entry for the ``spec`` of a TenantQuota in ``namespace`` with ``labels``; raises
    :class:`InvalidSpec`."""
    tenant = spec.get("tenant")
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise InvalidSpec("spec.tenant must be 1-256 printable ASCII characters without space, ',' or '='")
    requests = _integer(spec, "requests", 0)
    if requests is None:
        raise InvalidSpec("spec.requests is required")
    window = _integer(spec, "windowSeconds", 1)
    rate = spec.get("rateLimit")
    rps = burst = None
    if rate is not None:
        if not isinstance(rate, Mapping):
            raise InvalidSpec("spec.rateLimit must be an object with rps and burst")
        rps, burst = (
            _integer(rate, "rps", 1, "spec.rateLimit."),
            _integer(rate, "burst", 1, "spec.rateLimit."),
        )
        if rps is None or burst is None:
            raise InvalidSpec("spec.rateLimit needs both rps and burst")
        if burst < rps:
            raise InvalidSpec("spec.rateLimit.burst must be at least spec.rateLimit.rps")
    models = spec.get("allowedModels")
    if models is not None and (
        not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models)
    ):
        raise InvalidSpec("spec.allowedModels must be a non-empty list of model names")
    suspended = spec.get("suspended", False)
    if not isinstance(suspended, bool):
        raise InvalidSpec("spec.suspended must be true or false")
    return TenantEntry(
        requests=requests,
        window_secs=DEFAULT_WINDOW_SECS if window is None else window,
        rps=None if rps is None else float(rps),
        burst=burst,
        allowed_models=None if models is None else frozenset(models),
        suspended=suspended,
        tokens=token_budget(spec),
        tier=_tier(spec),
        groups=_groups(spec),
        namespace=namespace,
        labels=tuple(sorted(labels.items())),
    )


def _tier(spec: Mapping[str, Any]) -> str | None:
    tier = spec.get("tier")
    if tier is not None and (not isinstance(tier, str) or not _NAME.fullmatch(tier)):
        raise InvalidSpec(f"spec.tier must be {_NAME_RULE}")
    return tier


def _groups(spec: Mapping[str, Any]) -> frozenset[str]:
    groups = spec.get("groups", [])
    if (
        not isinstance(groups, list)
        or len(groups) > _MAX_GROUPS
        or not all(isinstance(group, str) and _NAME.fullmatch(group) for group in groups)
    ):
        raise InvalidSpec(f"spec.groups must be a list of at most {_MAX_GROUPS} names of {_NAME_RULE}")
    return frozenset(groups)


def token_budget(spec: Mapping[str, Any]) -> TokenBudget | None:
    """The spec's ``tokens`` as the live map's budget (None when absent); raises :class:`InvalidSpec`.

    ``perWindow`` is the live map's ``total``; an unset window or output reservation stays None (the
    gateway's own setting), so the CRD sets no default for them.
    """
    tokens = spec.get("tokens")
    if tokens is None:
        return None
    if not isinstance(tokens, Mapping):
        raise InvalidSpec("spec.tokens must be an object")
    prefix = "spec.tokens."
    budget = TokenBudget(
        total=_integer(tokens, "perWindow", 0, prefix),
        input=_integer(tokens, "input", 0, prefix),
        output=_integer(tokens, "output", 0, prefix),
        window_secs=_integer(tokens, "windowSeconds", 1, prefix),
        max_output_tokens=_integer(tokens, "maxOutputTokens", 1, prefix),
    )
    if budget.total is None and budget.input is None and budget.output is None:
        raise InvalidSpec("spec.tokens must set at least one of perWindow, input and output")
    return budget


def key_ref_of(spec: Mapping[str, Any], namespace: str) -> KeyRef | None:
    """The spec's ``apiKeySecretRef`` (None when absent); raises :class:`InvalidSpec` when malformed."""
    ref = spec.get("apiKeySecretRef")
    if ref is None:
        return None
    if not isinstance(ref, Mapping) or not all(
        isinstance(ref.get(f), str) and ref.get(f) for f in ("name", "key")
    ):
        raise InvalidSpec("spec.apiKeySecretRef needs a Secret name and key")
    return KeyRef(namespace, ref["name"], ref["key"])


def digests_of(value: bytes, key_hash_secret: bytes) -> set[str]:
    """The key-map fields for a Secret value holding API keys, one per line (several while rotating).

    Raises :class:`InvalidSpec` when the value holds no key, or a key the gateway would refuse.
    """
    keys = [line.strip() for line in value.splitlines() if line.strip()]
    if not keys:
        raise InvalidSpec("the API key Secret holds no key")
    for key in keys:
        if not is_usable_key(key):
            raise InvalidSpec(f"API keys must be at most {MAX_KEY_LENGTH} printable ASCII characters")
    return {key_digest(key_hash_secret, key) for key in keys}


def _integer(data: Mapping[str, Any], field: str, minimum: int, prefix: str = "spec.") -> int | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidSpec(f"{prefix}{field} must be an integer of at least {minimum}")
    return value


def env_form(entries: Mapping[str, TenantEntry]) -> str:
    """``TENANT_QUOTAS`` for gateways run without Redis: ``tenantA=5,tenantB=8``, sorted by tenant.

    The env form carries request quotas only (windows, rate limits, model rules and token budgets need
    the live map);
    a suspended tenant gets 0, so such gateways refuse it too (with 429 rather than 403).
    """
    return ",".join(
        f"{tenant}={0 if entry.suspended else entry.requests}" for tenant, entry in sorted(entries.items())
    )
