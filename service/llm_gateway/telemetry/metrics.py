"""Prometheus metrics, on a registry owned by the app (no process-global state).

Names and labels are the ones the replaced gateway documented, so dashboards keep working.
Label children are bound once here, so the hot path only increments.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    """The gateway's own series. ``registry`` is what ``GET /metrics`` exposes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        cb_events = Counter(
            "cb_events",
            "Circuit-breaker-lite events: upstream first-byte timeouts and load shedding.",
            ["event"],
            registry=self.registry,
        )
        self.upstream_timeouts = cb_events.labels(event="timeout")
        self.load_shed = cb_events.labels(event="load_shed")
