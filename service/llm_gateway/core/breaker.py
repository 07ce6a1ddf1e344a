"""The circuit breaker of one upstream deployment (pure; the clock is the caller's).

States and transitions (``now`` in seconds, monotonic)::

    closed ──(``failures`` in a row, or a failure ratio ≥ ``failure_ratio`` over ``window``
       ▲      with at least ``min_requests``)──► open
       │                                          │ cooldown over (``cooldown``, or the
       │                                          │ upstream's Retry-After, at most ``max_cooldown``)
       │                                          ▼
       └──────────(a probe succeeds)────────── half_open ──(a probe fails)──► open

In ``half_open`` at most ``probes`` attempts run at once; the others see the deployment as
unavailable. What counts as a failure is the caller's to say (connect errors, timeouts, the
retryable statuses). State is per replica, like Envoy's outlier detection: each replica learns an
upstream's health from its own traffic (see the README's "Upstream resilience").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llm_gateway.core.rolling import RollingCounts

__all__ = ["BreakerEvent", "BreakerPolicy", "BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]
#: A transition, as ``cb_events_total{event}`` counts it.
BreakerEvent = Literal["open", "half_open", "close"]

_REQUESTS, _FAILURES = 0, 1


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and for how long; see the module docstring. Times in seconds."""

    failures: int = 5
    failure_ratio: float = 0.5
    window: float = 30.0
    min_requests: int = 20
    cooldown: float = 30.0
    max_cooldown: float = 300.0
    probes: int = 1


class CircuitBreaker:
    """One deployment's breaker. Every method that changes state returns the transition it made
    (``None`` when there was none), for the caller to count."""

    __slots__ = ("_counts", "_in_a_row", "_policy", "_probing", "open_until", "state")

    def __init__(self, policy: BreakerPolicy) -> None:
        self._policy = policy
        self.state: BreakerState = "closed"
        #: When an open breaker lets probes through (meaningful only while open).
        self.open_until = 0.0
        self._in_a_row = 0
        self._probing = 0
        self._counts = RollingCounts(policy.window)

    def available(self, now: float) -> bool:
        """Whether an attempt may go to this deployment now (no change of state)."""
        if self.state == "closed":
            return True
        if self.state == "open":
            return now >= self.open_until
        return self._probing < self._policy.probes

    def acquire(self, now: float) -> BreakerEvent | None:
        """An attempt goes to this deployment (call only when :meth:`available`); it must end with
        :meth:`record` or :meth:`release`. An open breaker whose cooldown is over turns half-open."""
        event: BreakerEvent | None = None
        if self.state == "open":
            self.state, event = "half_open", "half_open"
        if self.state == "half_open":
            self._probing += 1
        return event

    def release(self) -> None:
        """An attempt ended without a verdict (the client left first): its probe slot is free again."""
        if self.state == "half_open" and self._probing:
            self._probing -= 1

    def record(self, now: float, ok: bool, retry_after: float | None = None) -> BreakerEvent | None:
        """An attempt's verdict. ``retry_after`` (seconds) is the upstream's own wait, which an
        opening breaker honours up to ``max_cooldown``."""
        policy = self._policy
        if self.state == "half_open":
            self.release()
            if ok:
                self._reset()
                return "close"
            return self._open(now, retry_after)
        if self.state == "open":  # an attempt that started before the breaker opened
            return None
        self._counts.add(now, _REQUESTS)
        if ok:
            self._in_a_row = 0
            return None
        self._in_a_row += 1
        self._counts.add(now, _FAILURES)
        if self._in_a_row >= policy.failures:
            return self._open(now, retry_after)
        requests, failures = self._counts.totals(now)
        if requests >= policy.min_requests and failures >= policy.failure_ratio * requests:
            return self._open(now, retry_after)
        return None

    def retry_after(self, now: float) -> float:
        """Seconds until this deployment may be tried again (0 when it may now)."""
        return max(0.0, self.open_until - now) if self.state == "open" else 0.0

    def _open(self, now: float, retry_after: float | None) -> BreakerEvent:
        wait = max(self._policy.cooldown, min(retry_after or 0.0, self._policy.max_cooldown))
        self.state, self.open_until = "open", now + wait
        self._probing = 0
        return "open"

    def _reset(self) -> None:
        self.state = "closed"
        self._in_a_row = 0
        self._counts.clear()
