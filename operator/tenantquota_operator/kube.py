"""The Kubernetes objects the operator keeps besides TenantQuota status: the ConfigMap with the env form
of the quota map, and the ServiceMonitor that scrapes the gateways (when the Prometheus Operator's API
exists). Server-side apply with the operator as field manager: idempotent, and it only owns its fields.
It also reads the Secrets that hold tenants' API keys.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from llm_gateway.core.privacy import tenant_hash
from llm_gateway.telemetry.labels import OTHER

__all__ = ["Kube", "tenant_relabelings"]

FIELD_MANAGER = "tenantquota-operator"
MANAGED_BY = {"app.kubernetes.io/managed-by": FIELD_MANAGER}
MONITORING = ("monitoring.coreos.com", "v1", "servicemonitors")
# Server-side apply; the client's stubs do not declare `_content_type`, which it does accept.
_APPLY: dict[str, Any] = {
    "field_manager": FIELD_MANAGER,
    "force": True,
    "_content_type": "application/apply-patch+yaml",
}


def tenant_relabelings(tenants: Iterable[str], hash_key: bytes | None = None) -> list[dict[str, Any]]:
    """``metricRelabelings`` that keep per-tenant series of declared tenants only.

    A ``tenant`` label value is kept when it is a declared tenant's id, the hash the gateway shows by
    default (keyed with ``hash_key``: the gateways' ``TENANT_HASH_KEY``), or the gateway's own
    ``other``; series of any other tenant are dropped. (Rewriting them to ``other`` instead would give
    several series the same labels in one scrape, which Prometheus rejects as duplicates: a gateway
    run with ``TENANT_LABEL=name`` sums them into its own ``other`` correctly.) Series without a
    tenant label pass untouched.
    """
    known = sorted(
        {value for tenant in tenants for value in (tenant, tenant_hash(tenant, hash_key))} | {OTHER}
    )
    return [
        {
            "sourceLabels": ["tenant"],
            "regex": "|".join(re.escape(value) for value in known),
            "targetLabel": "__tmp_tenant_known",
            "replacement": "true",
            "action": "replace",
        },
        {"sourceLabels": ["__tmp_tenant_known", "tenant"], "regex": ";.+", "action": "drop"},
        {"regex": "__tmp_tenant_known", "action": "labeldrop"},
    ]


class Kube:
    """A Kubernetes API client for the operator's side objects."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    @classmethod
    async def connect(cls) -> Kube:
        """In-cluster credentials when running in a pod, else the kubeconfig (``KUBECONFIG``)."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config()
        return cls(client.ApiClient())

    async def close(self) -> None:
        await self._api.close()

    async def apply_configmap(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": MANAGED_BY},
            "data": dict(data),
        }
        await self._core.patch_namespaced_config_map(
            name,
            namespace,
            body,
            **_APPLY,
        )

    async def secret_value(self, namespace: str, name: str, key: str) -> bytes | None:
        """The decoded value of ``key`` in Secret ``namespace/name``; None when either is missing."""
        try:
            secret = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        encoded = (secret.data or {}).get(key)
        return None if encoded is None else base64.b64decode(encoded)

    async def has_servicemonitors(self) -> bool:
        """Whether the ``monitoring.coreos.com/v1`` ServiceMonitor API is served."""
        group, version, plural = MONITORING
        try:
            resources = await client.CustomObjectsApi(self._api).get_api_resources(group, version)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return any(resource.name == plural for resource in resources.resources)

    async def apply_servicemonitor(
        self,
        namespace: str,
        name: str,
        selector: Mapping[str, str],
        port: str,
        tenants: Iterable[str],
        hash_key: bytes | None,
    ) -> None:
        group, version, plural = MONITORING
        body = {
            "apiVersion": f"{group}/{version}",
            "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": namespace, "labels": MANAGED_BY},
            "spec": {
                "selector": {"matchLabels": dict(selector)},
                "endpoints": [
                    {
                        "port": port,
                        "path": "/metrics",
                        "metricRelabelings": tenant_relabelings(tenants, hash_key),
                    }
                ],
            },
        }
        await self._custom.patch_namespaced_custom_object(
            group,
            version,
            namespace,
            plural,
            name,
            body,
            **_APPLY,
        )
