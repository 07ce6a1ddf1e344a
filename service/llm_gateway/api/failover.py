"""Upstream attempts for one request: retries, fallbacks and the deployments' circuit breakers.

:meth:`Failover.open` returns the first upstream answer worth relaying. Before any byte has reached
the client, an attempt that fails (connect failure, reset before headers, first-byte timeout, or a
status of ``RetryPolicy.statuses``) is followed by another while the request has attempts left
(``max_attempts``), time left (``deadline``) and the replica's :class:`RetryBudget` has a retry:
to an untried deployment of the model's group at once, else to a tried one after a backoff that
honours the upstream's ``retry-after-ms``/``Retry-After`` (see :mod:`llm_gateway.core.retries`).
Deployments whose breaker is open are skipped (:mod:`llm_gateway.core.balancer`); when every one is,
the request fails at once with 503 ``upstream_circuit_open`` and a ``Retry-After``, without an
upstream call. When no attempt is left, the last answer is relayed as it came (a 429 with the
upstream's ``retry-after``, a 5xx as 502) or its error raised. A client that leaves cancels the
request's task, and with it any wait or attempt. Every attempt is counted in
``gateway_upstream_attempts_total{deployment,outcome}`` and has a client span of its own.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable

from llm_gateway.adapters.upstream import Upstream, UpstreamResponse
from llm_gateway.adapters.upstream_router import UpstreamRouter
from llm_gateway.api.relay import open_upstream
from llm_gateway.core.balancer import Balancer, DeploymentState, Health
from llm_gateway.core.breaker import BreakerEvent
from llm_gateway.core.retries import RetryBudget, RetryPolicy, upstream_retry_after
from llm_gateway.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from llm_gateway.telemetry.exchange import Exchange
from llm_gateway.telemetry.recorder import Telemetry

__all__ = ["Attempt", "Failover"]

#: The outcome label of an upstream answer, by status class (429: ``rate_limited``).
_OUTCOMES = {1: "ok", 2: "ok", 3: "ok", 4: "client_error"}


class Attempt:
    """The attempt whose answer is relayed; end it with :meth:`Failover.finish`."""

    __slots__ = ("response", "state", "upstream")

    def __init__(self, response: UpstreamResponse, upstream: Upstream, state: DeploymentState) -> None:
        self.response = response
        self.upstream = upstream
        self.state = state


class Failover:
    """Attempts across a model group's deployments, for every endpoint of one replica."""

    def __init__(
        self,
        router: UpstreamRouter,
        balancer: Balancer,
        policy: RetryPolicy,
        budget: RetryBudget,
        telemetry: Telemetry,
        *,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._router = router
        self._balancer = balancer
        self._policy = policy
        self._budget = budget
        self._telemetry = telemetry
        self._metrics = telemetry.metrics
        self._rng = rng
        self._clock = clock
        for health in balancer.health():
            self._metrics.watch_breaker(health.name, health.breaker)

    async def open(
        self,
        exchange: Exchange,
        group: list[DeploymentState],
        *,
        span_name: str,
        path: str,
        body_for: Callable[[str | None], bytes],
        headers: dict[str, str],
        first_byte_timeout: float | None,
        client_model: str,
    ) -> Attempt:
        """The answer to relay, from the first deployment of ``group`` that gives one.

        ``body_for(model)`` is the body to send under the upstream model name (None: the client's);
        ``headers`` are the forwarded client headers, copied for each attempt. Raises
        :class:`UpstreamUnavailable` (every breaker open), or the last attempt's
        :class:`UpstreamError`/:class:`UpstreamTimeout`.
        """
        policy, clock = self._policy, self._clock
        now = clock()
        deadline = now + policy.deadline
        self._budget.request(now)
        tried: list[Health] = []
        state = self._balancer.pick(group, now)
        if state is None:
            raise self._all_open(group, now)
        while True:
            health = state.health
            self._count(health.breaker.acquire(clock()))
            health.in_flight += 1
            tried.append(health)
            exchange.attempts += 1
            exchange.deployment = state.name
            exchange.upstream_status = None
            deployment = state.deployment
            upstream = self._router.upstream(deployment.upstream)
            attempt_headers = dict(headers)
            self._telemetry.start_upstream(exchange, span_name, attempt_headers, upstream.address)
            retry_after: float | None = None
            try:
                response = await open_upstream(
                    upstream,
                    exchange,
                    "POST",
                    path,
                    body=body_for(deployment.model),
                    headers=attempt_headers,
                    first_byte_timeout=first_byte_timeout,
                    model=deployment.model or client_model,
                )
            except (UpstreamError, UpstreamTimeout) as error:
                outcome = "timeout" if isinstance(error, UpstreamTimeout) else "connect_error"
                failure: UpstreamError | UpstreamTimeout | UpstreamResponse = error
                self._record(health, outcome, False)
            except BaseException:  # cancelled: the client left
                health.in_flight -= 1
                health.breaker.release()
                self._metrics.attempts(state.name, "cancelled").inc()
                raise
            else:
                status = response.status
                outcome = _OUTCOMES.get(status // 100, "server_error") if status != 429 else "rate_limited"
                if status not in policy.statuses:
                    self._record(health, outcome, self._verdict(status))
                    self._telemetry.end_attempt(exchange, outcome, relayed=True)
                    return Attempt(response, upstream, state)
                retry_after = upstream_retry_after(response.headers, time.time())
                self._record(health, outcome, self._verdict(status), retry_after)
                failure = response
            now = clock()
            following = self._next(group, tried, now, deadline, retry_after)
            if following is None:  # no attempt left: this one is the answer
                if isinstance(failure, UpstreamResponse):
                    self._telemetry.end_attempt(exchange, outcome, relayed=True)
                    return Attempt(failure, upstream, state)
                health.in_flight -= 1
                self._telemetry.end_attempt(exchange, outcome, relayed=False)
                raise failure
            if isinstance(failure, UpstreamResponse):
                failure.close()
            health.in_flight -= 1
            self._telemetry.end_attempt(exchange, outcome, relayed=False)
            state, wait = following
            if wait > 0:
                await asyncio.sleep(wait)
                if not state.health.breaker.available(clock()):  # another request opened it meanwhile
                    picked = self._balancer.pick(group, clock(), tried)
                    if picked is None:
                        raise self._all_open(group, clock())
                    state = picked

    def finish(self, attempt: Attempt, *, failed: bool) -> None:
        """The relayed attempt ended; ``failed`` when the upstream broke off a started stream."""
        attempt.state.health.in_flight -= 1
        if failed:
            self._record(attempt.state.health, "stream_error", False, count=False)

    def _next(
        self,
        group: list[DeploymentState],
        tried: list[Health],
        now: float,
        deadline: float,
        retry_after: float | None,
    ) -> tuple[DeploymentState, float] | None:
        """The deployment of the next attempt and how long to wait first, or None when there is none."""
        if len(tried) >= self._policy.max_attempts or now >= deadline:
            return None
        state = self._balancer.pick(group, now, tried)
        if state is None:
            return None
        wait = 0.0
        if state.health in tried:  # a retry of a deployment that failed: back off, as it asked if it did
            asked = retry_after if state.health is tried[-1] else None
            wait = self._policy.wait(tried.count(state.health), asked, self._rng)
        if now + wait >= deadline or not self._budget.try_retry(now):
            return None
        return state, wait

    def _record(
        self,
        health: Health,
        outcome: str,
        healthy: bool | None,
        retry_after: float | None = None,
        *,
        count: bool = True,
    ) -> None:
        """Count an attempt's ``outcome`` and give its breaker the verdict ``healthy`` (None: no
        verdict, as for a 500 that may be the request's own doing)."""
        if count:
            self._metrics.attempts(health.name, outcome).inc()
        if healthy is None:
            health.breaker.release()
        else:
            self._count(health.breaker.record(self._clock(), healthy, retry_after))

    def _verdict(self, status: int) -> bool | None:
        """What an answer with ``status`` says of the deployment's health: failing for the breaker
        statuses, nothing for another 5xx (it may be the request's own doing), healthy otherwise."""
        if status in self._policy.breaker_statuses:
            return False
        return None if status >= 500 else True

    def _count(self, event: BreakerEvent | None) -> None:
        if event is not None:
            self._metrics.breaker_events[event].inc()

    def _all_open(self, group: list[DeploymentState], now: float) -> UpstreamUnavailable:
        wait = max(1, math.ceil(self._balancer.retry_after(group, now)))
        return UpstreamUnavailable(
            "every upstream deployment of this model is failing; retry later",
            headers=[(b"retry-after", str(wait).encode()), (b"retry-after-ms", str(wait * 1000).encode())],
        )
