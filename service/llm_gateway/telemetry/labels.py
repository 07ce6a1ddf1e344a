"""Label values with bounded cardinality, and how tenants are named outside the gateway (pure).

Clients choose model names and API keys freely; a label taken from them verbatim would let any
client create unbounded series in Prometheus. Everything here maps an open set onto a bounded one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Literal

from llm_gateway.core.privacy import tenant_hash
from llm_gateway.core.tenant import ANONYMOUS

__all__ = ["OTHER", "BoundedLabel", "TenantLabelMode", "TenantNames"]

#: The label value everything beyond the bound is folded into.
OTHER = "other"

TenantLabelMode = Literal["hash", "name"]


class BoundedLabel:
    """Maps values to at most ``len(allowed) + limit + 1`` label values.

    Values in ``allowed`` are kept as they are. Without an allow-list, the first ``limit``
    distinct values are kept, in order of first sight, and every later one becomes ``other``; with
    one, everything not allowed is ``other``.
    """

    __slots__ = ("_known", "_limit")

    def __init__(self, allowed: Collection[str] = (), limit: int = 0) -> None:
        self._known = {value: value for value in allowed}
        self._limit = 0 if allowed else limit

    def __call__(self, value: str) -> str:
        label = self._known.get(value)
        if label is not None:
            return label
        if self._limit > 0:
            self._limit -= 1
            self._known[value] = value
            return value
        return OTHER


class TenantNames:
    """How a tenant (an API key, in the open auth mode) appears in spans and metric labels.

    ``hash`` mode: as :func:`tenant_hash`. ``name`` mode: tenants declared in configuration (the
    live map or ``TENANT_QUOTAS``: ``declared(tenant)``) by their id, others hashed. ``anonymous``
    stays as it is. Metric labels are bounded further: in ``hash`` mode the first
    ``max_labels`` distinct tenants, in ``name`` mode the declared ones; the rest are ``other``.
    Hashes are keyed with ``hash_key`` when one is given (see :func:`tenant_hash`).
    """

    __slots__ = ("_bounded", "_declared", "_key", "_mode")

    def __init__(
        self,
        mode: TenantLabelMode,
        declared: Callable[[str], bool],
        max_labels: int,
        hash_key: bytes | None = None,
    ) -> None:
        self._mode = mode
        self._declared = declared
        self._key = hash_key
        self._bounded = BoundedLabel((ANONYMOUS,), 0) if mode == "name" else BoundedLabel((), max_labels)

    def attribute(self, tenant: str) -> str:
        """The tenant as a span attribute: never the raw key of an undeclared tenant."""
        if tenant == ANONYMOUS or (self._mode == "name" and self._declared(tenant)):
            return tenant
        return tenant_hash(tenant, self._key)

    def label(self, tenant: str) -> str:
        """The tenant as a metric label value, from a bounded set."""
        if self._mode == "name":
            return tenant if self._declared(tenant) else self._bounded(tenant)
        return self._bounded(ANONYMOUS if tenant == ANONYMOUS else tenant_hash(tenant, self._key))
