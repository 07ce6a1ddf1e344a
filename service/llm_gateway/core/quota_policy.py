"""What applies to a tenant (pure): its limits (live map, then ``TENANT_QUOTAS``, then
``DEFAULT_QUOTA``), its token budget (live map, then ``TENANT_TOKEN_QUOTAS``, then
``DEFAULT_TOKEN_QUOTA``; none when none of them sets one) and, from the live map only, its access
rules (suspension, allowed models) and what Cedar policies see of it (tier, groups, namespace,
labels)."""

from __future__ import annotations

from collections.abc import Mapping

from llm_gateway.core.policy.facts import DEFAULT_TIER, TenantFacts
from llm_gateway.core.quota import Limits
from llm_gateway.core.quota_map import TenantEntry
from llm_gateway.core.token_budget import TokenLimits
from llm_gateway.errors import Forbidden

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
        default_token_quota: int | None = None,
        tenant_token_quotas: Mapping[str, int] | None = None,
        token_window_secs: int = 60,
        max_output_tokens: int = 4096,
    ) -> None:
        self._default = Limits(quota=default_quota, window_secs=window_secs, rps=rps, burst=burst)
        self._configured = {
            tenant: Limits(quota=quota, window_secs=window_secs, rps=rps, burst=burst)
            for tenant, quota in tenant_quotas.items()
        }
        self._token_window_secs = token_window_secs
        self._max_output_tokens = max_output_tokens
        self._default_tokens = self._budget(default_token_quota)
        self._configured_tokens = {
            tenant: self._budget(tokens) for tenant, tokens in (tenant_token_quotas or {}).items()
        }
        self._live: dict[str, Limits] = {}
        self._live_tokens: dict[str, TokenLimits] = {}
        self._restricted: dict[str, TenantEntry] = {}  # live entries with access rules
        self._facts: dict[str, TenantFacts] = {}

    def limits_for(self, tenant: str) -> Limits:
        return self._live.get(tenant) or self._configured.get(tenant) or self._default

    def token_limits_for(self, tenant: str) -> TokenLimits | None:
        """The tenant's token budget: its live-map entry's, else ``TENANT_TOKEN_QUOTAS``', else
        ``DEFAULT_TOKEN_QUOTA``'s (as a request quota, an entry without one takes the gateway's own);
        None when there is none."""
        return self._live_tokens.get(tenant) or self._configured_tokens.get(tenant, self._default_tokens)

    def tenant_facts(self, tenant: str) -> TenantFacts:
        """The tenant as Cedar policies see it: from its live-map entry, else with the default tier."""
        return self._facts.get(tenant) or TenantFacts(tenant)

    def _budget(self, total: int | None) -> TokenLimits | None:
        if total is None:
            return None
        return TokenLimits(total, None, None, self._token_window_secs, self._max_output_tokens)

    def check_access(self, tenant: str, model: str) -> None:
        """Raise :class:`Forbidden` for a suspended tenant or a model its entry does not allow."""
        visible = self.visible_models(tenant)
        if visible is not None and model not in visible:
            raise Forbidden(f"model {model!r} is not allowed for this tenant", code="model_not_allowed")

    def visible_models(self, tenant: str) -> frozenset[str] | None:
        """The models a tenant may use (None: every model); raises :class:`Forbidden` when suspended."""
        entry = self._restricted.get(tenant)
        if entry is None:
            return None
        if entry.suspended:
            raise Forbidden("this tenant is suspended", code="tenant_suspended")
        return entry.allowed_models

    def replace_live_map(self, entries: Mapping[str, TenantEntry]) -> None:
        default = self._default
        self._live = {
            tenant: Limits(
                quota=entry.requests,
                window_secs=entry.window_secs or default.window_secs,
                rps=entry.rps or default.rps,
                burst=entry.burst or default.burst,
            )
            for tenant, entry in entries.items()
        }
        self._live_tokens = {
            tenant: TokenLimits(
                entry.tokens.total,
                entry.tokens.input,
                entry.tokens.output,
                entry.tokens.window_secs or self._token_window_secs,
                entry.tokens.max_output_tokens or self._max_output_tokens,
            )
            for tenant, entry in entries.items()
            if entry.tokens is not None
        }
        self._facts = {
            tenant: TenantFacts(
                tenant, entry.tier or DEFAULT_TIER, entry.groups, entry.namespace, entry.labels
            )
            for tenant, entry in entries.items()
        }
        self._restricted = {
            tenant: entry
            for tenant, entry in entries.items()
            if entry.suspended or entry.allowed_models is not None
        }

    def declares(self, tenant: str) -> bool:
        """True for a tenant named in the live map, ``TENANT_QUOTAS`` or ``TENANT_TOKEN_QUOTAS``."""
        return tenant in self._live or tenant in self._configured or tenant in self._configured_tokens

    @property
    def live_tenants(self) -> int:
        return len(self._live)
