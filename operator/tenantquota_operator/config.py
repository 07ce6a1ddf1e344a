"""Operator settings: the one place its environment is read."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from llm_gateway.core.privacy import PrivacyMode

__all__ = ["OperatorSettings"]


class OperatorSettings(BaseSettings):
    """Every setting the operator reads (environment only)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    redis_url: str = Field(description="The Redis the gateways read their live quota map from.")
    redis_cluster: bool = Field(
        False, description="`REDIS_URL` names a node of a Redis Cluster, as the gateways' `REDIS_CLUSTER`."
    )
    operator_namespace: str = Field(
        "default", description="Namespace of the ConfigMap and ServiceMonitor the operator maintains."
    )
    watch_namespace: str | None = Field(
        None,
        description="Only watch TenantQuotas and TenantPolicies in this namespace; unset watches all "
        "namespaces.",
    )
    configmap_name: str = Field(
        "secure-llm-gateway-tenant-quotas", description="ConfigMap holding `TENANT_QUOTAS` (the env form)."
    )
    servicemonitor_name: str = Field("secure-llm-gateway", description="The ServiceMonitor kept in sync.")
    gateway_service_selector: str = Field(
        "app.kubernetes.io/name=secure-llm-gateway",
        description="Labels (`k=v,k2=v2`) of the gateway Service the ServiceMonitor selects.",
    )
    tenant_hash_key: SecretStr | None = Field(
        None, description="The gateways' TENANT_HASH_KEY, so relabelings know declared tenants' pseudonyms."
    )
    key_hash_secret: SecretStr | None = Field(
        None,
        description="The gateways' KEY_HASH_SECRET: API keys from TenantQuotas' `apiKeySecretRef` are "
        "stored in the key map as HMACs under it. Unset: no key map is kept.",
    )
    privacy_mode: PrivacyMode = Field(
        "standard", description="The gateways' PRIVACY_MODE, so usage is read from the right Redis keys."
    )
    metrics_port_name: str = Field("http", description="Name of the gateway Service port serving /metrics.")
    usage_interval_secs: float = Field(
        15, gt=0, description="How often each TenantQuota's usage is refreshed."
    )
    resync_interval_secs: float = Field(
        60, gt=0, description="How often Redis is checked against TenantQuotas and TenantPolicies."
    )
    operator_metrics_port: int = Field(
        8081, ge=0, description="Port of the operator's own /metrics (0: off)."
    )
