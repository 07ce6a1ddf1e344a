"""Admission: quota, rate limit and token budget for one request, from Redis or in-process, per the
failure mode; and the settlement of an admitted request when it ends.

Without ``REDIS_URL`` the in-process store is the store (one replica). With it, Redis decides while
it answers; when it does not, ``QUOTA_FAILURE_MODE`` applies: ``local`` enforces this replica's share
of every limit in-process (``ceil(limit / N)``, N the replicas last seen through Redis, else
``GATEWAY_REPLICAS``), so an outage never multiplies a tenant's allowance by the number of pods;
``open`` admits; ``closed`` refuses with 503.
"""

from __future__ import annotations

import contextlib

from llm_gateway.adapters.local_limits import LocalLimits
from llm_gateway.adapters.redis_store import BackendUnavailable, RedisStore
from llm_gateway.core.policy.facts import TenantFacts
from llm_gateway.core.quota import Decision, FailureMode, Outcome
from llm_gateway.core.quota_policy import QuotaPolicy
from llm_gateway.core.token_budget import Reservation, TokenLimits
from llm_gateway.errors import (
    GatewayError,
    QuotaBackendUnavailable,
    QuotaExceeded,
    RateLimited,
    TokenBudgetExceeded,
)

__all__ = ["Admission"]


class Admission:
    """Decides for each request; raises the 429/503 :class:`GatewayError` for a refusal."""

    def __init__(
        self,
        policy: QuotaPolicy,
        local: LocalLimits,
        store: RedisStore | None,
        *,
        failure_mode: FailureMode,
        configured_replicas: int,
    ) -> None:
        self._policy = policy
        self._local = local
        self._store = store
        self._failure_mode = failure_mode
        self._configured_replicas = configured_replicas

    def tenant_facts(self, tenant: str) -> TenantFacts:
        """``tenant`` as tenant policies see it (see :meth:`QuotaPolicy.tenant_facts`)."""
        return self._policy.tenant_facts(tenant)

    def token_limits(self, tenant: str) -> TokenLimits | None:
        """``tenant``'s token budget, None when it has none."""
        return self._policy.token_limits_for(tenant)

    def check_access(self, tenant: str, model: str) -> None:
        """The built-in policies: a tenant suspended or a model not allowed by the live map is refused
        (403), before anything is counted."""
        self._policy.check_access(tenant, model)

    async def admit(
        self, tenant: str, rate_key: str, tokens: tuple[TokenLimits, Reservation] | None = None
    ) -> Decision:
        """The decision for an admitted request (its headers go on the response); raises on refusal.

        ``tokens``: the tenant's token budget (:meth:`token_limits`) and what the request reserves of
        it. Call :meth:`check_access` first.
        """
        limits = self._policy.limits_for(tenant)
        store = self._store
        decision: Decision | None = None
        if store is None:
            decision = await self._local.check(tenant, rate_key, limits, tokens)
        elif store.available:
            with contextlib.suppress(BackendUnavailable):  # the failure mode below applies
                decision = await store.admit(tenant, rate_key, limits, tokens)
        if decision is None:  # Redis is configured but did not answer
            if self._failure_mode == "open":
                return Decision(
                    Outcome.ALLOWED, limits.quota, limits.quota, limits.window_secs, metered=False
                )
            if self._failure_mode == "closed":
                raise QuotaBackendUnavailable("quota backend unavailable; try again shortly")
            replicas = (store.replicas if store is not None else 0) or self._configured_replicas
            shares = None if tokens is None else (tokens[0].divided(replicas), tokens[1])
            decision = await self._local.check(tenant, rate_key, limits.divided(replicas), shares)
        if not decision.allowed:
            raise self._refusal(decision)
        return decision

    async def settle(
        self, tenant: str, decision: Decision, *, refund: bool, charged: Reservation | None
    ) -> bool:
        """End an admitted request: with ``refund``, give back the quota unit ``decision`` counted;
        with ``charged``, correct its token reservation to that cost. True when the unit was given
        back.

        Only in the store and windows that counted them: a window that has ended keeps its counts,
        and a Redis that does not answer keeps them spent (never more than one timeout's wait).
        """
        if decision.counted_in == "local":
            return self._local.settle(tenant, decision, refund=refund, charged=charged)
        if decision.counted_in == "redis" and self._store is not None:
            with contextlib.suppress(BackendUnavailable):
                return await self._store.settle(tenant, decision, refund=refund, charged=charged)
        return False

    def _refusal(self, decision: Decision) -> GatewayError:
        headers = decision.headers()
        if decision.outcome is Outcome.RATE_LIMITED:
            return RateLimited("rate limit exceeded; slow down", headers=headers)
        tokens = decision.tokens
        if decision.outcome is Outcome.TOKENS_EXCEEDED and tokens is not None:
            limits, reserved = tokens.limits, tokens.reservation
            short = limits.shortfall(tokens.used_input, tokens.used_output, reserved)
            if short is not None:
                return TokenBudgetExceeded(short.message(ever=limits.fits(reserved)), headers=headers)
            return TokenBudgetExceeded("token budget exceeded for this window", headers=headers)
        return QuotaExceeded("request quota exceeded for this window", headers=headers)
