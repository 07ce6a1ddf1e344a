"""Which limits apply to a tenant (pure): live map, then ``TENANT_QUOTAS``, then ``DEFAULT_QUOTA``."""

from __future__ import annotations

from collections.abc import Mapping

from llm_gateway.core.quota import Limits
from llm_gateway.core.quota_map import TenantEntry

__all__ = ["QuotaPolicy"]


class QuotaPolicy:
    """Resolves :class:`Limits` per tenant. The live map is swapped whole by :meth:`replace_live_map`.

    Resolution is a dict lookup or two; results for the env-configured tenants are built once.
    """

    def __init__(
        self,
        *,
        default_quota: int,
        tenant_quotas: Mapping[str, int],
        window_secs: int,
        rps: float,
        burst: int,
    ) -> None:
        self._default = Limits(quota=default_quota, window_secs=window_secs, rps=rps, burst=burst)
        self._configured = {
            tenant: Limits(quota=quota, window_secs=window_secs, rps=rps, burst=burst)
            for tenant, quota in tenant_quotas.items()
        }
        self._live: dict[str, Limits] = {}

    def limits_for(self, tenant: str) -> Limits:
        return self._live.get(tenant) or self._configured.get(tenant) or self._default

    def replace_live_map(self, entries: Mapping[str, TenantEntry]) -> None:
        default = self._default
        self._live = {
            tenant: Limits(
                quota=entry.requests, window_secs=default.window_secs, rps=default.rps, burst=default.burst
            )
            for tenant, entry in entries.items()
        }

    def declares(self, tenant: str) -> bool:
        """True for a tenant named in the live map or ``TENANT_QUOTAS``."""
        return tenant in self._live or tenant in self._configured

    @property
    def live_tenants(self) -> int:
        return len(self._live)
