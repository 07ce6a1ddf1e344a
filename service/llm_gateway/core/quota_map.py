"""The live quota map: the versioned contract between the operator (writer) and the gateways (readers).

Redis layout:

- ``quota_map`` (hash): field = tenant id (the value clients send as ``X-Api-Key``), value = a JSON
  object ``{"v": 1, "requests": 50}`` with these optional fields: ``window_secs`` (the quota window,
  ≥ 1), ``rps`` (> 0) and ``burst`` (≥ 1) (this tenant's rate limit), ``allowed_models`` (a list of
  model names; others are refused with 403), ``suspended`` (true: every request refused with 403),
  ``tokens`` (the token budget), and what policies see of the tenant (see
  :mod:`llm_gateway.core.policy.facts`): ``tier`` (a string), ``groups`` (a list of strings),
  ``namespace`` (its TenantQuota's) and ``labels`` (an object of strings).
  An absent optional field means the gateway's own setting.
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

__all__ = [
    "MAP_KEY",
    "REV_KEY",
    "SCHEMA_VERSION",
    "TenantEntry",
    "TokenBudget",
    "decode_entry",
    "decode_versioned",
    "encode_entry",
]

MAP_KEY = "quota_map"
REV_KEY = "quota_map:rev"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class TokenBudget:
    """A tenant's token budget per window: ``total`` (input + output), ``input``, ``output``; a limit
    left None does not apply (at least one is set). ``window_secs`` and ``max_output_tokens`` (what a
    request naming no output limit reserves) None: the gateway's own settings."""

    total: int | None = None
    input: int | None = None
    output: int | None = None
    window_secs: int | None = None
    max_output_tokens: int | None = None


_BUDGET_FIELDS = ("total", "input", "output", "window_secs", "max_output_tokens")
_BUDGET_MINIMUMS = {"total": 0, "input": 0, "output": 0, "window_secs": 1, "max_output_tokens": 1}
#: The longest window an entry may name (31 days, as the CRD allows): Redis takes it as an expiry.
MAX_WINDOW_SECS = 2_678_400
#: The largest count an entry may name: one Redis and Lua both hold exactly (as
#: ``llm_gateway.core.token_budget.MAX_TOKENS``, which this contract module does not import).
_MAX_COUNT = 2**48


@dataclass(frozen=True, slots=True)
class TenantEntry:
    """One tenant's settings in the live map; ``None`` means the gateway's own setting."""

    requests: int
    window_secs: int | None = None
    rps: float | None = None
    burst: int | None = None
    allowed_models: frozenset[str] | None = None
    suspended: bool = False
    tokens: TokenBudget | None = None
    tier: str | None = None
    groups: frozenset[str] = frozenset()
    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()


def encode_entry(entry: TenantEntry) -> bytes:
    """The hash value a writer stores for ``entry`` (optional fields only when set)."""
    data: dict[str, Any] = {"v": SCHEMA_VERSION, "requests": entry.requests}
    for name in ("window_secs", "rps", "burst"):
        if getattr(entry, name) is not None:
            data[name] = getattr(entry, name)
    if entry.allowed_models is not None:
        data["allowed_models"] = sorted(entry.allowed_models)
    if entry.suspended:
        data["suspended"] = True
    if entry.tokens is not None:
        budget = entry.tokens
        data["tokens"] = {
            name: getattr(budget, name) for name in _BUDGET_FIELDS if getattr(budget, name) is not None
        }
    if entry.tier is not None:
        data["tier"] = entry.tier
    if entry.groups:
        data["groups"] = sorted(entry.groups)
    if entry.namespace is not None:
        data["namespace"] = entry.namespace
    if entry.labels:
        data["labels"] = dict(entry.labels)
    return orjson.dumps(data)


def decode_versioned(raw: bytes | str) -> dict[str, Any]:
    """One hash value of a live-map contract: a JSON object of the :data:`SCHEMA_VERSION` this gateway
    reads; raises ``ValueError`` naming the problem."""
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = data.get("v")
    if version != SCHEMA_VERSION:
        raise ValueError(f"unsupported schema version {version!r} (this gateway reads {SCHEMA_VERSION})")
    return data


def decode_entry(raw: bytes | str) -> TenantEntry:
    """Parse one hash value; raise ``ValueError`` naming the problem when it cannot be used."""
    data = decode_versioned(raw)
    models = data.get("allowed_models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise ValueError(f"'allowed_models' must be a list of strings, got {models!r}")
    suspended = data.get("suspended", False)
    if not isinstance(suspended, bool):
        raise ValueError(f"'suspended' must be true or false, got {suspended!r}")
    rps = data.get("rps")
    if rps is not None and (isinstance(rps, bool) or not isinstance(rps, (int, float)) or rps <= 0):
        raise ValueError(f"'rps' must be a number greater than 0, got {rps!r}")
    return TenantEntry(
        requests=_integer(data, "requests", minimum=0, required=True),
        window_secs=_integer(data, "window_secs", minimum=1, maximum=MAX_WINDOW_SECS),
        rps=None if rps is None else float(rps),
        burst=_integer(data, "burst", minimum=1, maximum=2**31),
        allowed_models=None if models is None else frozenset(models),
        suspended=suspended,
        tokens=_budget(data.get("tokens")),
        tier=_string(data, "tier"),
        groups=frozenset(_strings(data, "groups")),
        namespace=_string(data, "namespace"),
        labels=_labels(data.get("labels")),
    )


def _string(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string, got {value!r}")
    return value


def _strings(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"'{name}' must be a list of strings, got {value!r}")
    return value


def _labels(data: Any) -> tuple[tuple[str, str], ...]:
    if data is None:
        return ()
    if not isinstance(data, dict) or not all(isinstance(value, str) for value in data.values()):
        raise ValueError(f"'labels' must be an object of strings, got {data!r}")
    return tuple(sorted(data.items()))


def _budget(data: Any) -> TokenBudget | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"'tokens' must be an object, got {data!r}")
    budget = TokenBudget(
        **{
            name: _integer(
                data,
                name,
                minimum=_BUDGET_MINIMUMS[name],
                maximum=MAX_WINDOW_SECS if name == "window_secs" else _MAX_COUNT,
                where="tokens.",
            )
            for name in _BUDGET_FIELDS
        }
    )
    if budget.total is None and budget.input is None and budget.output is None:
        raise ValueError("'tokens' must set at least one of 'total', 'input' and 'output'")
    return budget


def _integer(
    data: dict[str, Any],
    name: str,
    *,
    minimum: int,
    maximum: int = _MAX_COUNT,
    required: bool = False,
    where: str = "",
) -> Any:
    """``data[name]``, an integer from ``minimum`` to ``maximum`` (bounds that keep every count and
    expiry one a Redis script takes); None when absent and not ``required``."""
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ValueError(f"'{where}{name}' must be an integer from {minimum} to {maximum}, got {value!r}")
    return value
