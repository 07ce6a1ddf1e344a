"""Prometheus metrics, on a registry owned by the app (no process-global state).

Names and labels are the ones the replaced gateway documented, so dashboards keep working.
Label children are bound once here, so the hot path only increments.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import Literal

from prometheus_client import CollectorRegistry, Counter

from llm_gateway.core.redaction import Entity

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
        quota_blocks = Counter(
            "quota_block",
            "Requests refused by quotas and rate limits, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.quota_blocks = {
            reason: quota_blocks.labels(reason=reason)
            for reason in ("exceeded", "rate_limited", "backend_unavailable")
        }
        redactions = Counter(
            "redactions",
            "Entities redacted, by entity and direction (request: to the upstream; response: to the client).",
            ["entity", "direction"],
            registry=self.registry,
        )
        self._redactions = {
            (entity, direction): redactions.labels(entity=entity.value, direction=direction)
            for entity in Entity
            for direction in ("request", "response")
        }
        self.quota_backend_errors = Counter(
            "quota_backend_errors",
            "Redis calls for quotas and rate limits that failed or timed out.",
            registry=self.registry,
        )

    def count_redactions(self, found: Tally[Entity], direction: Literal["request", "response"]) -> None:
        """Add what one request's redaction found to ``redactions_total``."""
        for entity, count in found.items():
            self._redactions[(entity, direction)].inc(count)
