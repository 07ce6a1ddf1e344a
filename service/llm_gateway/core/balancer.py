"""Choosing the deployment of a model group for each attempt (pure; clock and randomness injected).

Every deployment has a :class:`~llm_gateway.core.breaker.CircuitBreaker` and a count of attempts in
flight. For an attempt, the candidates are the deployments whose breaker lets one through, those
this request has not tried yet first (a retry moves away from what just failed), of the lowest
priority among them (higher priorities are fallbacks). Within that tier the deployment with the
fewest attempts in flight per unit of weight wins, ties drawn at random by weight (a tier is at
most 64 deployments, and usually two or three: a scan is cheaper than sampling). Unloaded, the
shares follow the weights; a slow deployment accumulates attempts in flight and gets fewer new
ones (two choices drawn by weight, Envoy's default, would still send it a quarter of the traffic
of a pair: measured in the tests).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable

from llm_gateway.core.breaker import BreakerEvent, BreakerPolicy, CircuitBreaker
from llm_gateway.core.routing import Deployment

__all__ = ["Balancer", "DeploymentState", "Health"]


class Health:
    """What a deployment (an upstream and a model there) has learned, whichever groups list it: its
    breaker and its attempts in flight (the caller counts them)."""

    __slots__ = ("breaker", "in_flight", "name")

    def __init__(self, name: str, breaker: CircuitBreaker) -> None:
        self.name = name
        self.breaker = breaker
        self.in_flight = 0


class DeploymentState:
    """A deployment as one group lists it (its weight and priority there) and its shared health."""

    __slots__ = ("deployment", "health", "name")

    def __init__(self, deployment: Deployment, health: Health) -> None:
        self.deployment = deployment
        self.name = deployment.name
        self.health = health


class Balancer:
    """The health of every deployment, and the choice among a group's (see the module docstring)."""

    def __init__(
        self,
        deployments: Iterable[Deployment],
        policy: BreakerPolicy,
        rng: random.Random,
        on_event: Callable[[BreakerEvent], None] = lambda _: None,
    ) -> None:
        """``on_event`` hears every breaker's transitions."""
        self._health: dict[str, Health] = {}
        for deployment in deployments:
            if deployment.name not in self._health:
                breaker = CircuitBreaker(policy, on_event)
                self._health[deployment.name] = Health(deployment.name, breaker)
        self._rng = rng

    def health(self) -> list[Health]:
        """Every deployment's health, once per upstream and model."""
        return list(self._health.values())

    def group(self, deployments: tuple[Deployment, ...]) -> list[DeploymentState]:
        """``deployments`` (lowest priority first) with their health."""
        return [DeploymentState(d, self._health[d.name]) for d in deployments]

    def pick(
        self, group: list[DeploymentState], now: float, tried: Collection[Health] = ()
    ) -> DeploymentState | None:
        """The deployment for the next attempt (``group`` lowest priority first), or None when no
        breaker lets an attempt through. Changes nothing: the caller acquires the breaker."""
        if len(group) == 1:  # the common case: one deployment
            only = group[0]
            return only if only.health.breaker.available(now) else None
        available = [s for s in group if s.health.breaker.available(now)]
        if not available:
            return None
        fresh = [s for s in available if s.health not in tried] or available
        priority = fresh[0].deployment.priority
        tier = [s for s in fresh if s.deployment.priority == priority]
        if len(tier) == 1:
            return tier[0]
        least, ties = float("inf"), tier[:0]
        for state in tier:
            load = state.health.in_flight / state.deployment.weight
            if load < least:
                least, ties = load, [state]
            elif load == least:
                ties.append(state)
        if len(ties) == 1:
            return ties[0]
        return self._rng.choices(ties, [s.deployment.weight for s in ties])[0]

    def retry_after(self, group: list[DeploymentState], now: float) -> float:
        """Seconds until some deployment of ``group`` may be tried again."""
        return min(s.health.breaker.retry_after(now) for s in group)
