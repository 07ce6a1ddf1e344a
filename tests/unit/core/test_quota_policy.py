from __future__ import annotations

from llm_gateway.core.quota_map import TenantEntry
from llm_gateway.core.quota_policy import QuotaPolicy


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
