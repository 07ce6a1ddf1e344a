from __future__ import annotations

import pytest

from llm_gateway.core.quota import Limits
from llm_gateway.core.quota_map import TenantEntry
from llm_gateway.core.quota_policy import QuotaPolicy
from llm_gateway.errors import Forbidden


def make() -> QuotaPolicy:
    return QuotaPolicy(default_quota=120, tenant_quotas={"tenantA": 5}, window_secs=60, rps=5, burst=10)


def test_live_map_overrides_env_which_overrides_default() -> None:
    policy = make()
    assert policy.limits_for("x").quota == 120
    assert policy.limits_for("tenantA").quota == 5
    policy.replace_live_map({"tenantA": TenantEntry(requests=9), "x": TenantEntry(requests=0)})
    assert policy.limits_for("tenantA").quota == 9
    assert policy.limits_for("x").quota == 0
    policy.replace_live_map({})
    assert policy.limits_for("tenantA").quota == 5


def test_window_and_rates_come_from_settings() -> None:
    limits = make().limits_for("tenantA")
    assert (limits.window_secs, limits.rps, limits.burst) == (60, 5, 10)


def test_a_live_entry_may_override_window_and_rate_limit() -> None:
    policy = make()
    policy.replace_live_map({"t": TenantEntry(requests=7, window_secs=3600, rps=0.5, burst=2)})
    assert policy.limits_for("t") == Limits(quota=7, window_secs=3600, rps=0.5, burst=2)
    policy.replace_live_map({"t": TenantEntry(requests=7, burst=3)})
    assert policy.limits_for("t") == Limits(quota=7, window_secs=60, rps=5, burst=3)


def test_suspended_tenants_and_unlisted_models_are_forbidden() -> None:
    policy = make()
    policy.check_access("t", "anything")  # no entry: no rule
    policy.replace_live_map(
        {
            "t": TenantEntry(requests=7, allowed_models=frozenset({"gpt-4o-mini"})),
            "s": TenantEntry(requests=7, suspended=True),
        }
    )
    policy.check_access("t", "gpt-4o-mini")
    with pytest.raises(Forbidden) as refused:
        policy.check_access("t", "gpt-4o")
    assert (refused.value.status, refused.value.code) == (403, "model_not_allowed")
    with pytest.raises(Forbidden) as suspended:
        policy.check_access("s", "gpt-4o-mini")
    assert suspended.value.code == "tenant_suspended"
    policy.replace_live_map({})
    policy.check_access("s", "gpt-4o")  # rules leave with their entry
