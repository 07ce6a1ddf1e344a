"""The circuit breaker of one upstream deployment (pure; the clock is the caller's).

States and transitions (``now`` in seconds, monotonic)::

    closed ──(``failures`` in a row within ``window``, or a failure ratio ≥ ``failure_ratio`` over ``window``
       ▲      with at least ``min_requests``; failures from ``min_tenants`` tenants)──► open
       │                                          │ cooldown over (``cooldown``, or the
       │                                          │ upstream's Retry-After, at most ``max_cooldown``)
       │                                          ▼
       └──────────(a probe succeeds)────────── half_open ──(a probe fails)──► open

In ``half_open`` at most ``probes`` attempts run at once; the others see the deployment as
unavailable. Each attempt holds a ticket from :meth:`CircuitBreaker.acquire`: only the probes of the
current half-open round decide it, so an attempt that started earlier cannot close, reopen or free
a slot of a round it was not part of. What counts as a failure is the caller's to say (connect
errors, timeouts, some statuses). A failure the request itself may have caused (a status, a
timeout) names its tenant, and such failures open the breaker only when they come from at least
``min_tenants`` tenants (in the run of consecutive failures, or in the window): one tenant's requests
cannot cut every tenant off. A failure no request can cause (the upstream refused the connection)
names no tenant and needs no company. State is per replica, like Envoy's outlier detection (see the
README's "Upstream resilience").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from llm_gateway.core.rolling import RollingCounts

__all__ = ["BreakerEvent", "BreakerPolicy", "BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]
#: A transition, as ``cb_events_total{event}`` counts it.
BreakerEvent = Literal["open", "half_open", "close"]

_REQUESTS, _FAILURES = 0, 1
#: Tenants whose last failure time a breaker keeps for the window's tenant count (the most recent).
_TENANTS_KEPT = 8
#: Stands for the tenant of a failure no request can cause: it satisfies ``min_tenants`` alone.
_ANY = object()


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and for how long; see the module docstring. Times in seconds."""

    failures: int = 5
    failure_ratio: float = 0.5
    window: float = 30.0
    min_requests: int = 20
    min_tenants: int = 2
    cooldown: float = 30.0
    max_cooldown: float = 300.0
    probes: int = 1


def _ignore(_: BreakerEvent) -> None:
    pass


class CircuitBreaker:
    """One deployment's breaker; ``on_event`` hears every transition it makes."""

    __slots__ = (
        "_counts",
        "_in_a_row",
        "_last_failure",
        "_on_event",
        "_policy",
        "_probing",
        "_round",
        "_run_tenants",
        "_window_tenants",
        "open_until",
        "state",
    )

    def __init__(self, policy: BreakerPolicy, on_event: Callable[[BreakerEvent], None] = _ignore) -> None:
        self._policy = policy
        self._on_event = on_event
        self.state: BreakerState = "closed"
        #: When an open breaker lets probes through (meaningful only while open).
        self.open_until = 0.0
        self._in_a_row = 0
        self._last_failure = 0.0
        self._run_tenants: set[object] = set()
        self._window_tenants: dict[object, float] = {}
        self._probing = 0
        self._round = 0  # the current half-open round's ticket
        self._counts = RollingCounts(policy.window)

    def available(self, now: float) -> bool:
        """Whether an attempt may go to this deployment now (no change of state)."""
        if self.state == "closed":
            return True
        if self.state == "open":
            return now >= self.open_until
        return self._probing < self._policy.probes

    def acquire(self, now: float) -> int:
        """An attempt goes to this deployment (call only when :meth:`available`). Returns its ticket
        for :meth:`record` or :meth:`release`: 0, or the round's number for a probe. An open breaker
        whose cooldown is over turns half-open."""
        if self.state == "open":
            self.state = "half_open"
            self._round += 1
            self._on_event("half_open")
        if self.state == "half_open":
            self._probing += 1
            return self._round
        return 0

    def release(self, ticket: int) -> None:
        """An attempt ended without a verdict (its client left, or its answer says nothing of the
        deployment): a probe's slot is free again."""
        if ticket and ticket == self._round and self.state == "half_open" and self._probing:
            self._probing -= 1

    def record(
        self,
        now: float,
        ticket: int,
        ok: bool,
        *,
        tenant: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """An attempt's verdict. ``tenant``: whose request failed, when the request may have caused
        the failure (None: it cannot have). ``retry_after`` (seconds) is the upstream's own wait,
        which an opening breaker honours up to ``max_cooldown``."""
        if self.state == "half_open":
            if ticket != self._round or not ticket:
                return  # an attempt of another round, or from before: no say in this one
            self.release(ticket)
            if ok:
                self._close()
            else:
                self._open(now, retry_after)
            return
        if self.state == "open" or ticket:  # an attempt from before it opened, or a stale probe
            return
        self._counts.add(now, _REQUESTS)
        if ok:
            self._in_a_row = 0
            self._run_tenants.clear()
            return
        who = _ANY if tenant is None else tenant
        if self._in_a_row and now - self._last_failure > self._policy.window:
            self._in_a_row = 0  # a run of failures is consecutive within the window, not forever
            self._run_tenants.clear()
        self._last_failure = now
        self._in_a_row += 1
        self._counts.add(now, _FAILURES)
        if len(self._run_tenants) < self._policy.min_tenants:
            self._run_tenants.add(who)
        self._window_tenants.pop(who, None)
        self._window_tenants[who] = now
        if len(self._window_tenants) > _TENANTS_KEPT:
            del self._window_tenants[next(iter(self._window_tenants))]
        if self._trips(now):
            self._open(now, retry_after)

    def state_at(self, now: float) -> BreakerState:
        """The state as an attempt would find it at ``now``: an open breaker whose cooldown is over
        is half-open (it lets the next attempt through as a probe)."""
        return "half_open" if self.state == "open" and now >= self.open_until else self.state

    def retry_after(self, now: float) -> float:
        """Seconds until this deployment may be tried again (0 when it may now)."""
        return max(0.0, self.open_until - now) if self.state == "open" else 0.0

    def _trips(self, now: float) -> bool:
        policy = self._policy
        if self._in_a_row >= policy.failures and _enough(self._run_tenants, policy.min_tenants):
            return True
        requests, failures = self._counts.totals(now)
        if requests < policy.min_requests or failures < policy.failure_ratio * requests:
            return False
        recent = {who for who, at in self._window_tenants.items() if at > now - policy.window}
        return _enough(recent, policy.min_tenants)

    def _open(self, now: float, retry_after: float | None) -> None:
        wait = max(self._policy.cooldown, min(retry_after or 0.0, self._policy.max_cooldown))
        self.state, self.open_until = "open", now + wait
        self._probing = 0
        self._on_event("open")

    def _close(self) -> None:
        self.state = "closed"
        self._in_a_row = 0
        self._run_tenants.clear()
        self._window_tenants.clear()
        self._counts.clear()
        self._on_event("close")


def _enough(tenants: set[object], needed: int) -> bool:
    return _ANY in tenants or len(tenants) >= needed
