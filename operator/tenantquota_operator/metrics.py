"""The operator's own Prometheus metrics: TenantQuota and TenantPolicy reconciles by result, errors by
backend, last sync age."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

__all__ = ["OperatorMetrics"]


class OperatorMetrics:
    """Series on a registry of their own, served on ``port`` (0: not served)."""

    def __init__(self, port: int) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "tenantquota_reconciles",
            "TenantQuota reconciliations by result: applied, conflict, invalid.",
            ["result"],
            registry=self.registry,
        )
        self.policies = Counter(
            "tenantpolicy_reconciles",
            "TenantPolicy reconciliations by result: published, invalid.",
            ["result"],
            registry=self.registry,
        )
        self.errors = Counter(
            "tenantquota_errors",
            "Failed calls by backend (redis, kubernetes); retried with backoff.",
            ["backend"],
            registry=self.registry,
        )
        # Every series exists from the start (at 0), so rates and alerts see them before the first event.
        for result in ("applied", "conflict", "invalid"):
            self.reconciles.labels(result)
        for result in ("published", "invalid"):
            self.policies.labels(result)
        for backend in ("redis", "kubernetes"):
            self.errors.labels(backend)
        self._last_sync = time.time()
        Gauge(
            "tenantquota_last_sync_age_seconds",
            "Seconds since a TenantQuota was last written to the live map.",
            registry=self.registry,
        ).set_function(lambda: time.time() - self._last_sync)
        if port:
            start_http_server(port, addr="0.0.0.0", registry=self.registry)

    def synced(self) -> None:
        """A TenantQuota was just written to the live map (``tenantquota_last_sync_age_seconds`` is 0)."""
        self._last_sync = time.time()
