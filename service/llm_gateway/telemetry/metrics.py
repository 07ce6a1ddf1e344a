"""Prometheus metrics, on a registry owned by the app (no process-global state).

The replaced gateway's names and labels are kept as they were, so dashboards and alerts keep
working: ``requests_total{route}``, ``http_requests_total{route,model}``, ``inflight_requests``,
``redactions_total``, ``quota_block_total{reason}``, ``cb_events_total{event}``; new series get new
names (``quota_refunds_total{reason}``). LLM series follow
the OpenTelemetry GenAI conventions as Prometheus spells them (``gen_ai.server.time_to_first_token``
becomes ``gen_ai_server_time_to_first_token_seconds``). Label values that clients choose (model,
tenant) arrive here already bounded (see :mod:`llm_gateway.telemetry.labels`).

Label children are bound once and cached, so the hot path only looks up and increments.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from time import monotonic, perf_counter
from typing import Generic, Literal, TypeVar, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_fastapi_instrumentator.metrics import Info

from llm_gateway.core.breaker import BreakerEvent, BreakerState, CircuitBreaker
from llm_gateway.core.redaction import Entity
from llm_gateway.core.refunds import REFUND_REASONS
from llm_gateway.errors import (
    GatewayError,
    Overloaded,
    QuotaBackendUnavailable,
    QuotaExceeded,
    RateLimited,
    TokenBudgetExceeded,
    UpstreamTimeout,
)
from llm_gateway.telemetry.exchange import Exchange, StreamOutcome

__all__ = ["GatewayMetrics"]

_T = TypeVar("_T", Counter, Histogram, Gauge)

# Bucket boundaries recommended by the GenAI semantic conventions.
_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# HTTP latency, from sub-millisecond gateway answers to minute-long streams.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# The gateway's own cost per request: tens of microseconds to a few milliseconds.
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)

_BREAKER_STATES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}

#: Status recorded for a request whose client left before any response began (nginx's convention).
CLIENT_CLOSED = "499"


class _Children(Generic[_T]):
    """A metric's label children, bound on first use and cached (``labels()`` itself takes a lock and
    validates on every call). Only bounded label values may be passed in."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: _T) -> None:
        self._metric: _T = metric
        self._children: dict[tuple[str, ...], _T] = {}

    def __call__(self, *values: str) -> _T:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class GatewayMetrics:
    """The gateway's own series. ``registry`` is what ``GET /metrics`` exposes.

    ``per_tenant`` adds the series labelled by tenant (``gateway_tenant_*``); without it no series
    carries a tenant at all.
    """

    def __init__(self, routes: Iterable[str], *, per_tenant: bool) -> None:
        # A `_created` series per counter and histogram doubles what Prometheus stores for no use
        # here. The switch is the library's own and process-wide; it applies to series made after it.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry = CollectorRegistry()
        requests = Counter(
            "requests", "Proxied API requests received, by route.", ["route"], registry=registry
        )
        self.requests = {route: requests.labels(route=route) for route in routes}
        self._http_requests = _Children(
            Counter(
                "http_requests",
                "Proxied API requests answered, by route and requested model (`unknown` without one).",
                ["route", "model"],
                registry=registry,
            )
        )
        self._http_latency = _Children(
            Histogram(
                "http_request_duration_seconds",
                "Duration of HTTP requests, by route template (`none`: an unknown path), method and status.",
                ["handler", "method", "status"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            )
        )
        # A plain int read at scrape time: two locked gauge updates per request saved.
        self.inflight = 0
        Gauge(
            "inflight_requests", "Proxied API requests in progress, streams included.", registry=registry
        ).set_function(lambda: self.inflight)
        cb_events = Counter(
            "cb_events",
            "Circuit-breaker events: upstream first-byte timeouts (504), load shedding (503), and "
            "deployment breakers opening, half-opening and closing.",
            ["event"],
            registry=registry,
        )
        self.breaker_events: dict[BreakerEvent, Counter] = {
            event: cb_events.labels(event=event) for event in get_args(BreakerEvent)
        }
        self.retry_budget_exhausted = Counter(
            "gateway_retry_budget_exhausted",
            "Retries and fallbacks not made because the replica's retry budget was spent.",
            registry=registry,
        )
        self.attempts = _Children(
            Counter(
                "gateway_upstream_attempts",
                "Attempts sent to upstream deployments, by deployment and outcome (ok, client_error, "
                "rate_limited, server_error, connect_error, interrupted, timeout, cancelled, stream_error).",
                ["deployment", "outcome"],
                registry=registry,
            )
        )
        self._deployment_state = Gauge(
            "gateway_deployment_state",
            "Circuit breaker of each upstream deployment: 0 closed, 1 half-open (its cooldown is over: the "
            "next attempt probes it), 2 open (cooling down).",
            ["deployment"],
            registry=registry,
        )

        quota_blocks = Counter(
            "quota_block",
            "Requests refused by quotas and rate limits, by reason.",
            ["reason"],
            registry=registry,
        )
        # The counters a failed request adds to, by what it failed with.
        self._failures: dict[type[GatewayError], Counter] = {
            UpstreamTimeout: cb_events.labels(event="timeout"),
            Overloaded: cb_events.labels(event="load_shed"),
            QuotaExceeded: quota_blocks.labels(reason="exceeded"),
            RateLimited: quota_blocks.labels(reason="rate_limited"),
            TokenBudgetExceeded: quota_blocks.labels(reason="tokens_exceeded"),
            QuotaBackendUnavailable: quota_blocks.labels(reason="backend_unavailable"),
        }
        refunds = Counter(
            "quota_refunds",
            "Quota units given back to requests that failed before the client got an answer, by reason.",
            ["reason"],
            registry=registry,
        )
        self.refunds = {reason: refunds.labels(reason=reason) for reason in REFUND_REASONS}
        redactions = Counter(
            "redactions",
            "Entities redacted, by entity and direction (request: to the upstream; response: to the client).",
            ["entity", "direction"],
            registry=registry,
        )
        self._redactions = {
            (entity, direction): redactions.labels(entity=entity.value, direction=direction)
            for entity in Entity
            for direction in ("request", "response")
        }
        self._policy_denials = Counter(
            "gateway_policy_denials",
            "Requests a tenant policy denied, by the policy that denied them (none: nothing permitted"
            " them) and the Cedar action. Bounded: policies come from the configuration.",
            ["policy", "action"],
            registry=registry,
        )
        self._policy_errors = Counter(
            "gateway_policy_errors",
            "Evaluations of a tenant policy that failed (Cedar skips the policy: a forbid that fails"
            " forbids nothing), by policy.",
            ["policy"],
            registry=registry,
        )
        self.quota_backend_errors = Counter(
            "quota_backend_errors",
            "Redis calls for quotas and rate limits that failed or timed out.",
            registry=registry,
        )
        self._ttft = _Children(
            Histogram(
                "gen_ai_server_time_to_first_token_seconds",
                "Streamed requests: time from the request's arrival to the first event sent to the client.",
                ["gen_ai_request_model"],
                buckets=_TTFT_BUCKETS,
                registry=registry,
            )
        )
        self._duration = _Children(
            Histogram(
                "gen_ai_server_request_duration_seconds",
                "Chat requests that reached the upstream: time from arrival to the end of the response.",
                ["gen_ai_request_model"],
                buckets=_DURATION_BUCKETS,
                registry=registry,
            )
        )
        self._tokens = _Children(
            Histogram(
                "gen_ai_client_token_usage",
                "Tokens per request, as the upstream reported them,, by type (input, output) and model.",
                ["gen_ai_token_type", "gen_ai_request_model"],
                buckets=_TOKEN_BUCKETS,
                registry=registry,
            )
        )
        self._overhead = _Children(
            Histogram(
                "gateway_overhead_seconds",
                "Time spent in the gateway itself per request: total time minus the waits for the upstream "
                "and for the client.",
                ["route"],
                buckets=_OVERHEAD_BUCKETS,
                registry=registry,
            )
        )
        streams = Counter(
            "gateway_streams",
            "Streamed responses by how they ended.",
            ["outcome"],
            registry=registry,
        )
        self._streams = {outcome: streams.labels(outcome=outcome) for outcome in get_args(StreamOutcome)}
        self.per_tenant = per_tenant
        self._tenant_requests: _Children[Counter] | None = None
        self._tenant_tokens: _Children[Counter] | None = None
        self._tenant_budget: _Children[Gauge] | None = None
        self._tenant_budget_used: _Children[Gauge] | None = None
        if per_tenant:
            self._tenant_budget = _Children(
                Gauge(
                    "gateway_tenant_token_budget",
                    "Token budget per window, by tenant and limit (total: input + output; input; output).",
                    ["tenant", "gen_ai_token_type"],
                    registry=registry,
                )
            )
            self._tenant_budget_used = _Children(
                Gauge(
                    "gateway_tenant_token_budget_used",
                    "Tokens reserved and charged in the tenant's current budget window, by limit, as of the"
                    " last request this replica settled (replicas differ by what came after: take the max).",
                    ["tenant", "gen_ai_token_type"],
                    registry=registry,
                )
            )
            self._tenant_requests = _Children(
                Counter(
                    "gateway_tenant_requests",
                    "Proxied API requests by tenant and response status (429: quota or rate limit).",
                    ["tenant", "code"],
                    registry=registry,
                )
            )
            self._tenant_tokens = _Children(
                Counter(
                    "gateway_tenant_tokens",
                    "Tokens the upstream reported, by tenant and type (input, output).",
                    ["tenant", "gen_ai_token_type"],
                    registry=registry,
                )
            )

    def count_breaker_event(self, event: BreakerEvent) -> None:
        """A deployment's breaker opened, half-opened or closed: ``cb_events_total{event}``."""
        self.breaker_events[event].inc()

    def watch_breaker(self, deployment: str, breaker: CircuitBreaker) -> None:
        """Export ``breaker``'s state as ``gateway_deployment_state{deployment}`` (read at scrape time)."""
        self._deployment_state.labels(deployment=deployment).set_function(
            lambda: _BREAKER_STATES[breaker.state_at(monotonic())]
        )

    def count_redactions(self, found: Tally[Entity], direction: Literal["request", "response"]) -> None:
        """Add what one request's redaction found to ``redactions_total``."""
        for entity, count in found.items():
            self._redactions[(entity, direction)].inc(count)

    def count_policy_denial(self, policies: tuple[str, ...], action: str) -> None:
        """Add one denied request to ``gateway_policy_denials_total``, once per deciding policy."""
        for policy in policies or ("none",):
            self._policy_denials.labels(policy=policy, action=action).inc()

    def count_policy_error(self, policy: str) -> None:
        """Add one failed evaluation of ``policy`` to ``gateway_policy_errors_total``."""
        self._policy_errors.labels(policy=policy).inc()

    def observe_http(self, info: Info) -> None:
        """prometheus-fastapi-instrumentator's callback for the FastAPI routes."""
        self._http_latency(info.modified_handler, info.method, info.modified_status).observe(
            info.modified_duration
        )

    def observe(self, exchange: Exchange, model: str, tenant: str | None) -> None:
        """Record an ended request. ``model`` and ``tenant`` are its (bounded) label values."""
        now = perf_counter()
        status = str(exchange.status) if exchange.status else CLIENT_CLOSED
        self._http_latency(exchange.route, exchange.method, status).observe(now - exchange.start)
        self._http_requests(exchange.route, model).inc()
        error = exchange.error
        if error is not None:
            counter = self._failures.get(type(error))
            if counter is not None:
                counter.inc()
        if exchange.upstream_status is not None and exchange.model is not None:
            self._duration(model).observe(now - exchange.start)
        self._overhead(exchange.route).observe(exchange.overhead(now))
        if exchange.first_event_at is not None:
            self._ttft(model).observe(exchange.first_event_at - exchange.start)
        if exchange.stream_outcome is not None:
            self._streams[exchange.stream_outcome].inc()
        usage = exchange.usage
        if usage is not None:
            self._tokens("input", model).observe(usage.input_tokens)
            self._tokens("output", model).observe(usage.output_tokens)
        if tenant is not None and self._tenant_requests is not None and self._tenant_tokens is not None:
            self._tenant_requests(tenant, status).inc()
            if usage is not None:
                self._tenant_tokens(tenant, "input").inc(usage.input_tokens)
                self._tenant_tokens(tenant, "output").inc(usage.output_tokens)
            if exchange.budget is not None and exchange.charged is not None:
                self._observe_budget(tenant, exchange)

    def _observe_budget(self, tenant: str, exchange: Exchange) -> None:
        state, charged = exchange.budget, exchange.charged
        assert state is not None and charged is not None and self._tenant_budget is not None
        assert self._tenant_budget_used is not None
        used_in = max(state.used_input - state.reservation.input + charged.input, 0)
        used_out = max(state.used_output - state.reservation.output + charged.output, 0)
        limits = state.limits
        for kind, limit, used in (
            ("total", limits.total, used_in + used_out),
            ("input", limits.input, used_in),
            ("output", limits.output, used_out),
        ):
            if limit is not None:
                self._tenant_budget(tenant, kind).set(limit)
                self._tenant_budget_used(tenant, kind).set(used)
