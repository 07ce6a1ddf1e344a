"""kopf handlers: TenantQuota resources in, the live quota map, ConfigMap, ServiceMonitor and status out.

Level-based: every handler derives what should be from the index of all TenantQuotas (which kopf
keeps current from its watch) and writes only differences. A periodic resync repairs a Redis that
lost its data and removes entries no TenantQuota backs. Redis and API failures are temporary errors
(retried with backoff); a spec the gateway cannot apply is a permanent error shown in status.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from llm_gateway.core.privacy import storage_id
from llm_gateway.core.quota_map import TenantEntry
from tenantquota_operator.claims import (
    Claim,
    InvalidSpec,
    KeyRef,
    digests_of,
    entry_from_spec,
    env_form,
    key_ref_of,
    token_budget,
    winner,
)
from tenantquota_operator.conditions import condition, timestamp, with_transitions
from tenantquota_operator.config import OperatorSettings
from tenantquota_operator.kube import Kube
from tenantquota_operator.live_map import LiveMap
from tenantquota_operator.metrics import OperatorMetrics
from tenantquota_operator.policy_handlers import register as register_policies
from tenantquota_operator.retrying import RETRY_DELAY_SECS, retried
from tenantquota_operator.usage import usage_status

__all__ = ["register"]

RESOURCE = ("gateway.secure-llm.dev", "v1alpha1", "tenantquotas")
FINALIZER = "gateway.secure-llm.dev/live-map"


class SecretMissing(Exception):
    """A TenantQuota's API key Secret (or its key) does not exist (yet)."""


ClaimIndex = kopf.Index[str, Claim]


def register(config: OperatorSettings, registry: kopf.OperatorRegistry) -> None:
    """Register every handler, configured by ``config``, in ``registry`` (TenantPolicies' too)."""
    register_policies(config, registry)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # kopf's own readers: the pod's service account in a cluster, else the kubeconfig.
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def start(
        settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any
    ) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.watching.server_timeout = 30
        settings.posting.level = logging.WARNING
        hash_key = config.tenant_hash_key.get_secret_value().encode() if config.tenant_hash_key else None
        memo.live_map = LiveMap(
            config.redis_url,
            storage_id=storage_id(config.privacy_mode, hash_key),
            cluster=config.redis_cluster,
        )
        memo.kube = await Kube.connect()
        memo.metrics = OperatorMetrics(config.operator_metrics_port)
        memo.servicemonitors = await memo.kube.has_servicemonitors()
        if not memo.servicemonitors:
            logger.warning(
                "the monitoring.coreos.com/v1 ServiceMonitor API is not served; no ServiceMonitor is kept"
            )
            return
        # Scraping must not wait for the first TenantQuota, nor for Redis (which may start after the
        # operator): the gateways' ServiceMonitor exists from the start, with the tenants the live map
        # holds if it answers, else with none; every reconcile applies it again with the tenants.
        try:
            tenants = await memo.live_map.tenants()
        except Exception as error:  # redis-py's own exception tree
            logger.warning(
                "the live map is not readable yet (%s): the ServiceMonitor starts without tenants", error
            )
            tenants = []
        try:
            await _apply_servicemonitor(config, memo, tenants)
        except Exception as error:  # the API client's own exception tree
            logger.warning("the ServiceMonitor is written at the first reconcile instead: %s", error)

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: kopf.Memo, **_: Any) -> None:
        await memo.live_map.close()
        await memo.kube.close()

    @kopf.index(*RESOURCE, id="claims_by_tenant", registry=registry)
    def claims_by_tenant(
        namespace: str, name: str, spec: kopf.Spec, meta: kopf.Meta, labels: kopf.Labels, **_: Any
    ) -> dict[str, Claim]:
        try:
            entry: TenantEntry | None = entry_from_spec(spec, namespace, labels)
            keys = key_ref_of(spec, namespace)
        except InvalidSpec:
            entry = keys = None
        tenant = str(spec.get("tenant"))
        return {tenant: Claim(str(meta.get("creationTimestamp")), namespace, name, tenant, entry, keys)}

    # The same reconciliation on every change and as the periodic resync, which also repairs what
    # drifted in Redis (a restart without persistence) and removes entries no TenantQuota backs.
    @kopf.timer(*RESOURCE, id="resync", interval=config.resync_interval_secs, registry=registry)
    @kopf.on.resume(*RESOURCE, registry=registry)
    @kopf.on.create(*RESOURCE, registry=registry)
    @kopf.on.update(*RESOURCE, field="spec", registry=registry)
    @kopf.on.update(*RESOURCE, field="metadata.labels", registry=registry)  # the tenant's labels
    async def apply(
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        namespace: str,
        name: str,
        patch: kopf.Patch,
        claims_by_tenant: ClaimIndex,
        memo: kopf.Memo,
        **_: Any,
    ) -> None:
        await _reconcile(config, memo, spec, meta, status, namespace, name, patch, claims_by_tenant)
        backed = set(_winning_entries(claims_by_tenant))
        with retried(memo, "redis"):
            stray = await memo.live_map.tenants() - backed
            if stray and await memo.live_map.remove(*stray):
                logging.getLogger(__name__).info(
                    "removed %d live-map entries no TenantQuota backs", len(stray)
                )
            await memo.live_map.remove_keys_of_others(backed)

    @kopf.timer(*RESOURCE, interval=config.usage_interval_secs, registry=registry)
    async def usage(spec: kopf.Spec, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        tenant = str(spec.get("tenant"))
        try:
            budget = token_budget(spec)
        except InvalidSpec:  # the reconcile reports it; no budget is applied
            budget = None
        with retried(memo, "redis"):
            counted = await memo.live_map.usage(tenant)
            tokens = None if budget is None else await memo.live_map.token_usage(tenant)
        patch.status["usage"] = usage_status(int(spec.get("requests", 0)), counted, budget, tokens)

    @kopf.on.delete(*RESOURCE, registry=registry)
    async def remove(
        spec: kopf.Spec, namespace: str, name: str, claims_by_tenant: ClaimIndex, memo: kopf.Memo, **_: Any
    ) -> None:
        ref = f"{namespace}/{name}"
        tenant = str(spec.get("tenant"))
        successor = winner(claim for claim in claims_by_tenant.get(tenant, []) if claim.ref != ref)
        digests: set[str] = set()
        if successor is not None:  # the next-oldest claim takes over at once, keys included
            with contextlib.suppress(InvalidSpec, SecretMissing):  # its own reconcile reports those
                digests = await _digests(config, memo, successor.keys)
        with retried(memo, "redis"):
            if successor is None:
                await memo.live_map.remove(tenant)
            elif successor.entry is not None:
                await memo.live_map.put(tenant, successor.entry)
            await memo.live_map.put_keys(tenant, digests)
        await _sync_side_objects(config, memo, _winning_entries(claims_by_tenant, without=ref))


async def _reconcile(
    settings: OperatorSettings,
    memo: kopf.Memo,
    spec: Mapping[str, Any],
    meta: Mapping[str, Any],
    status: Mapping[str, Any],
    namespace: str,
    name: str,
    patch: kopf.Patch,
    claims: ClaimIndex,
) -> None:
    ref = f"{namespace}/{name}"
    generation = meta.get("generation")
    previous = status.get("conditions") or []

    def not_ready(reason: str, message: str) -> None:
        patch.status["conditions"] = with_transitions(
            previous, [condition("Ready", False, reason, message, generation)]
        )

    try:
        entry = entry_from_spec(spec, namespace, meta.get("labels") or {})
        key_ref = key_ref_of(spec, namespace)
    except InvalidSpec as error:
        memo.metrics.reconciles.labels("invalid").inc()
        not_ready("InvalidSpec", str(error))
        raise kopf.PermanentError(str(error)) from None
    tenant = str(spec["tenant"])
    first = winner(claims.get(tenant, []))
    if first is not None and first.ref != ref:
        memo.metrics.reconciles.labels("conflict").inc()
        message = f"tenant {tenant!r} is already claimed by the older TenantQuota {first.ref}; not applied"
        patch.status["conditions"] = with_transitions(
            previous,
            [
                condition("Ready", False, "Conflict", message, generation),
                condition("Conflict", True, "TenantClaimed", message, generation),
            ],
        )
        return
    try:
        digests = await _digests(settings, memo, key_ref)
    except InvalidSpec as error:
        memo.metrics.reconciles.labels("invalid").inc()
        not_ready("InvalidApiKeys", str(error))
        raise kopf.PermanentError(str(error)) from None
    except SecretMissing as error:
        not_ready("SecretNotFound", str(error))
        raise kopf.TemporaryError(str(error), delay=RETRY_DELAY_SECS) from None
    with retried(memo, "redis"):
        await memo.live_map.put(tenant, entry)
        await memo.live_map.put_keys(tenant, digests)
    servicemonitor = await _sync_side_objects(settings, memo, _winning_entries(claims))
    memo.metrics.reconciles.labels("applied").inc()
    memo.metrics.synced()
    patch.status["observedGeneration"] = generation
    patch.status["syncedAt"] = timestamp()
    patch.status["conditions"] = with_transitions(
        previous,
        [
            condition("Ready", True, "Applied", _applied(len(digests)), generation),
            condition("Conflict", False, "NoConflict", "", generation),
            servicemonitor,
        ],
    )


def _applied(keys: int) -> str:
    return "in the live quota map" + (f" with {keys} API key{'s' * (keys != 1)}" if keys else "")


async def _digests(settings: OperatorSettings, memo: kopf.Memo, ref: KeyRef | None) -> set[str]:
    """The key-map fields for the keys ``ref`` points at (none without a ref)."""
    if ref is None:
        return set()
    if settings.key_hash_secret is None:
        raise InvalidSpec("spec.apiKeySecretRef is set but the operator has no KEY_HASH_SECRET")
    with retried(memo, "kubernetes", Exception):
        value = await memo.kube.secret_value(ref.namespace, ref.name, ref.key)
    if value is None:
        raise SecretMissing(f"Secret {ref.namespace}/{ref.name} with key {ref.key!r} not found")
    return digests_of(value, settings.key_hash_secret.get_secret_value().encode())


async def _sync_side_objects(
    settings: OperatorSettings, memo: kopf.Memo, entries: Mapping[str, TenantEntry]
) -> dict[str, Any]:
    """Write the ConfigMap and the ServiceMonitor; the ``ServiceMonitor`` condition to report."""
    # The API client raises its own exception tree; every failure here is worth a retry.
    with retried(memo, "kubernetes", Exception):
        await memo.kube.apply_configmap(
            settings.operator_namespace, settings.configmap_name, {"TENANT_QUOTAS": env_form(entries)}
        )
        if not memo.servicemonitors:
            return condition(
                "ServiceMonitor", False, "APINotServed", "monitoring.coreos.com/v1 is not installed", None
            )
        await _apply_servicemonitor(settings, memo, entries)
    return condition("ServiceMonitor", True, "Applied", settings.servicemonitor_name, None)


async def _apply_servicemonitor(settings: OperatorSettings, memo: kopf.Memo, tenants: Iterable[str]) -> None:
    await memo.kube.apply_servicemonitor(
        settings.operator_namespace,
        settings.servicemonitor_name,
        dict(pair.split("=", 1) for pair in settings.gateway_service_selector.split(",") if pair),
        settings.metrics_port_name,
        tenants,
        settings.tenant_hash_key.get_secret_value().encode() if settings.tenant_hash_key else None,
    )


def _winning_entries(claims: ClaimIndex, without: str | None = None) -> dict[str, TenantEntry]:
    """Tenant → the entry that speaks for it, over every TenantQuota (except ``without``)."""
    entries = {}
    for tenant in claims:
        first = winner(claim for claim in claims[tenant] if claim.ref != without)
        if first is not None and first.entry is not None:
            entries[tenant] = first.entry
    return entries
