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
from dataclasses import dataclass
from time import perf_counter

from llm_gateway.adapters.upstream import Upstream, UpstreamResponse
from llm_gateway.adapters.upstream_router import UpstreamRouter
from llm_gateway.api.relay import open_upstream
from llm_gateway.core.balancer import DeploymentState, Health
from llm_gateway.core.retries import RetryBudget, RetryPolicy, upstream_retry_after
from llm_gateway.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable, UpstreamUnreachable
from llm_gateway.telemetry.exchange import Exchange
from llm_gateway.telemetry.recorder import Telemetry

__all__ = ["Attempt", "Failover", "UpstreamCall"]

#: The outcome label of an upstream answer, by status class (429: ``rate_limited``).
_OUTCOMES = {1: "ok", 2: "ok", 3: "ok", 4: "client_error"}
#: The longest ``Retry-After`` a refusal with every breaker open says (seconds).
_MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """What every attempt of one request sends, and how its answer is read.

    ``body_for(model)`` is the body under the upstream's model name (None: the client's,
    ``client_model``); ``headers`` are the forwarded client headers (each attempt gets a copy); an
    answer for which ``read_whole`` is true (one that is not a live stream) is read to its end
    within the attempt, pausing at most ``idle_timeout`` seconds, so that one the upstream breaks
    off is retried too; ``span_name`` names each attempt's client span.
    """

    span_name: str
    path: str
    body_for: Callable[[str | None], bytes]
    headers: dict[str, str]
    first_byte_timeout: float | None
    client_model: str
    read_whole: Callable[[UpstreamResponse], bool]
    idle_timeout: float


class Attempt:
    """The attempt whose answer is relayed; end it with :meth:`Failover.finish`.

    ``pending``: the deployment's breaker waits for this attempt's verdict, which comes when the
    relay ends (a stream may break after its first event).
    """

    __slots__ = ("pending", "response", "state", "upstream")

    def __init__(
        self, response: UpstreamResponse, upstream: Upstream, state: DeploymentState, pending: bool
    ) -> None:
        self.response = response
        self.upstream = upstream
        self.state = state
        self.pending = pending


@dataclass(slots=True)
class _Failure:
    """An attempt that failed: an error, or an answer with a retried status (still open)."""

    outcome: str
    upstream: Upstream
    error: UpstreamError | UpstreamTimeout | None = None
    response: UpstreamResponse | None = None
    retry_after: float | None = None
    #: May the same deployment be tried again (not after a timeout or a refused key)?
    again: bool = True


class Failover:
    """Attempts across a model group's deployments, for every endpoint of one replica."""

    def __init__(
        self,
        router: UpstreamRouter,
        policy: RetryPolicy,
        budget: RetryBudget,
        telemetry: Telemetry,
        *,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._router = router
        self._balancer = router.balancer
        self._policy = policy
        self._budget = budget
        self._telemetry = telemetry
        self._metrics = telemetry.metrics
        self._rng = rng
        self._clock = clock
        for health in router.balancer.health():
            self._metrics.watch_breaker(health.name, health.breaker)

    async def open(self, exchange: Exchange, group: list[DeploymentState], call: UpstreamCall) -> Attempt:
        """The answer to relay, from the first deployment of ``group`` that gives one.

        Raises :class:`UpstreamUnavailable` (every breaker open), or the last attempt's
        :class:`UpstreamError`/:class:`UpstreamTimeout`.
        """
        now = self._clock()
        deadline = now + self._policy.deadline
        self._budget.request(now)
        tried: list[Health] = []
        state = self._balancer.pick(group, now)
        if state is None:
            raise self._all_open(group, now)
        while True:
            tried.append(state.health)
            result = await self._attempt(exchange, state, call)
            if isinstance(result, Attempt):
                return result
            following = self._next(group, tried, self._clock(), deadline, result)
            if following is None:  # no attempt left: this one is the answer
                if result.response is not None:
                    self._telemetry.end_attempt(exchange, result.outcome, relayed=True)
                    return Attempt(result.response, result.upstream, state, pending=False)
                self._drop(state.health, exchange, result.outcome)
                assert result.error is not None
                raise result.error
            if result.response is not None:
                result.response.close()
            self._drop(state.health, exchange, result.outcome)
            state, wait = following
            if wait > 0:  # waiting for the upstream's sake: its time, not the gateway's overhead
                started = perf_counter()
                try:
                    await asyncio.sleep(wait)
                finally:
                    exchange.waited_for_upstream(started)
                if not state.health.breaker.available(self._clock()):  # opened meanwhile
                    picked = self._balancer.pick(group, self._clock(), tried)
                    if picked is None:
                        raise self._all_open(group, self._clock())
                    state = picked

    async def _attempt(
        self, exchange: Exchange, state: DeploymentState, call: UpstreamCall
    ) -> Attempt | _Failure:
        """One attempt at ``state``'s deployment: the answer to relay, or what failed (its breaker
        has the verdict; a failed attempt stays in flight until the caller drops it)."""
        health, deployment = state.health, state.deployment
        ticket = health.breaker.acquire(self._clock())
        health.in_flight += 1
        exchange.attempts += 1
        exchange.deployment = state.name
        exchange.upstream_status = None
        upstream = self._router.upstream(deployment.upstream)
        headers = dict(call.headers)
        self._telemetry.start_upstream(exchange, call.span_name, headers, upstream.address)
        response: UpstreamResponse | None = None
        reading = False  # the headers came; the body is being read
        try:
            response = await open_upstream(
                upstream,
                exchange,
                "POST",
                call.path,
                body=call.body_for(deployment.model),
                headers=headers,
                first_byte_timeout=call.first_byte_timeout,
                model=deployment.model or call.client_model,
            )
            if response.status < 400 and call.read_whole(response):
                reading, started = True, perf_counter()
                try:
                    response.first_chunk += await response.read_rest(call.idle_timeout)
                finally:
                    exchange.waited_for_upstream(started)  # the upstream's time, not the gateway's
        except (UpstreamError, UpstreamTimeout) as error:
            if response is not None:
                response.close()
            if error.code == "upstream_response_too_large":  # another attempt would be as large
                self._settle(health, ticket, "server_error", None)
                self._drop(health, exchange, "server_error")
                raise
            timeout = isinstance(error, UpstreamTimeout)
            # A refused connection is nobody's request's doing; a timeout or a reset may be.
            who = None if isinstance(error, UpstreamUnreachable) else exchange.tenant
            outcome = "timeout" if timeout else "interrupted" if reading else "connect_error"
            failure = _Failure(outcome, upstream, error, again=not timeout)
            self._settle(health, ticket, failure.outcome, False, who)
            return failure
        except BaseException:  # cancelled: the client left
            if response is not None:
                response.close()
            self._settle(health, ticket, "cancelled", None)
            self._drop(health, exchange, "cancelled")
            raise
        status, policy = response.status, self._policy
        outcome = "rate_limited" if status == 429 else _OUTCOMES.get(status // 100, "server_error")
        verdict = self._verdict(status)
        if status in policy.statuses or status in policy.failover_statuses:
            retry_after = upstream_retry_after(response.headers, time.time())
            self._settle(health, ticket, outcome, verdict, exchange.tenant, retry_after)
            again = status not in policy.failover_statuses
            return _Failure(outcome, upstream, response=response, retry_after=retry_after, again=again)
        # The answer to relay. A healthy one's verdict waits for the relay's end (a stream may break),
        # but a probe's first byte decides its half-open round at once.
        pending = verdict is True and not ticket
        if not pending:
            self._settle(health, ticket, outcome, verdict, exchange.tenant)
        self._telemetry.end_attempt(exchange, outcome, relayed=True)
        return Attempt(response, upstream, state, pending)

    def finish(self, attempt: Attempt, *, failed: bool, tenant: str | None) -> None:
        """The relayed attempt ended; ``failed`` when the upstream broke a started stream off. Its
        breaker gets the verdict it was waiting for (after a probe's success: the failure, if any)."""
        health = attempt.state.health
        health.in_flight -= 1
        if attempt.pending:
            self._metrics.attempts(health.name, "stream_error" if failed else "ok").inc()
        if attempt.pending or failed:
            health.breaker.record(self._clock(), 0, not failed, tenant=tenant)

    def _settle(
        self,
        health: Health,
        ticket: int,
        outcome: str,
        verdict: bool | None,
        tenant: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Count an attempt's ``outcome`` and give its breaker the ``verdict`` (None: none, as for a
        500 that may be the request's own doing, or a client that left)."""
        self._metrics.attempts(health.name, outcome).inc()
        if verdict is None:
            health.breaker.release(ticket)
        else:
            health.breaker.record(self._clock(), ticket, verdict, tenant=tenant, retry_after=retry_after)

    def _drop(self, health: Health, exchange: Exchange, outcome: str) -> None:
        """An attempt whose answer is not relayed is over: out of the in-flight count, span ended."""
        health.in_flight -= 1
        self._telemetry.end_attempt(exchange, outcome, relayed=False)

    def _next(
        self,
        group: list[DeploymentState],
        tried: list[Health],
        now: float,
        deadline: float,
        failure: _Failure,
    ) -> tuple[DeploymentState, float] | None:
        """The deployment of the next attempt and how long to wait first, or None when there is none."""
        if len(tried) >= self._policy.max_attempts or now >= deadline:
            return None
        state = self._balancer.pick(group, now, tried)
        if state is None:
            return None
        wait = 0.0
        if state.health in tried:  # a retry of a deployment that failed: back off, as it asked if it did
            last = state.health is tried[-1]
            if last and not failure.again:
                return None
            asked = failure.retry_after if last else None
            wait = self._policy.wait(tried.count(state.health), asked, self._rng)
        if now + wait >= deadline:
            return None
        if not self._budget.try_retry(now):
            self._metrics.retry_budget_exhausted.inc()
            return None
        return state, wait

    def _verdict(self, status: int) -> bool | None:
        """What an answer with ``status`` says of the deployment's health: failing for the breaker
        statuses, nothing for another 5xx (it may be the request's own doing), healthy otherwise."""
        if status in self._policy.breaker_statuses:
            return False
        return None if status >= 500 else True

    def _all_open(self, group: list[DeploymentState], now: float) -> UpstreamUnavailable:
        wait = max(1, math.ceil(min(self._balancer.retry_after(group, now), _MAX_RETRY_AFTER)))
        return UpstreamUnavailable(
            "every upstream deployment of this model is failing; retry later",
            headers=[(b"retry-after", str(wait).encode()), (b"retry-after-ms", str(wait * 1000).encode())],
        )
