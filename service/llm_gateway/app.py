"""Application wiring: ``create_app(settings)`` builds the ASGI app; the lifespan owns the I/O.

Nothing happens at import time. The upstream session is opened when the app starts and closed
after the server has drained in-flight requests.

The proxy endpoints are raw ASGI apps reached through :class:`HotPathRouter`, in front of FastAPI:
FastAPI's own middleware stack (exception, body-limit, telemetry and exit-stack layers) costs
more CPU per request than the whole proxy does, so only the endpoints that need none of it skip it.
FastAPI serves everything else (health, metrics, docs) and the 404/405 answers.

``http_request_duration_seconds`` covers both: prometheus-fastapi-instrumentator's middleware
records the FastAPI routes, and the hot-path endpoints record their own requests into the same
histogram. The middleware costs about 40 µs per request (a ``Request``, a route scan and a
``Response`` object each time; bench/RESULTS.md), a tenth of the whole proxy's budget, which the
endpoints, knowing their route and status already, do not need to pay.
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from llm_gateway import __version__
from llm_gateway.adapters.local_limits import LocalLimits
from llm_gateway.adapters.redis_store import RedisStore
from llm_gateway.adapters.upstream import Upstream
from llm_gateway.adapters.upstream_probe import UpstreamProbe
from llm_gateway.adapters.upstream_router import UpstreamRouter
from llm_gateway.api.admission import Admission
from llm_gateway.api.authorization import Authorization
from llm_gateway.api.endpoint import APIEndpoint
from llm_gateway.api.failover import Failover
from llm_gateway.api.health import Check, health_router
from llm_gateway.api.identity import Identify
from llm_gateway.api.models import MODEL_ROUTE, Models
from llm_gateway.api.models import PREFIX as MODEL_PREFIX
from llm_gateway.api.models import ROUTE as MODELS_ROUTE
from llm_gateway.api.openapi import add_proxy_paths
from llm_gateway.api.relay import StreamTimings
from llm_gateway.core.api_keys import KeyRing
from llm_gateway.core.apis import APIS
from llm_gateway.core.balancer import Balancer
from llm_gateway.core.concurrency import ConcurrencyLimit
from llm_gateway.core.privacy import storage_id
from llm_gateway.core.quota_policy import QuotaPolicy
from llm_gateway.core.redaction import Entity, Redactor, Replacer
from llm_gateway.core.retries import RetryBudget
from llm_gateway.core.routing import RoutingTable
from llm_gateway.errors import GatewayError, InvalidRequest, MethodNotAllowed, NotFound
from llm_gateway.routing_config import DEFAULT_UPSTREAM
from llm_gateway.settings import Settings
from llm_gateway.telemetry.labels import BoundedLabel, TenantNames
from llm_gateway.telemetry.logs import ACCESS_LOGGER, AccessLog
from llm_gateway.telemetry.metrics import GatewayMetrics
from llm_gateway.telemetry.recorder import Telemetry
from llm_gateway.telemetry.tracing import Tracing

__all__ = ["create_app"]

#: How long shutdown waits for queued spans to reach the collector.
_TRACE_FLUSH_SECS = 3.0


class HotPathRouter:
    """Pure ASGI: HTTP routes to raw endpoints by exact path, then by path prefix (``/v1/models/``);
    all other traffic to ``fallback``."""

    def __init__(self, routes: dict[str, ASGIApp], prefixes: dict[str, ASGIApp], fallback: FastAPI) -> None:
        self._routes = routes
        self._prefixes = tuple(prefixes.items())
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http":
            path = scope["path"]
            endpoint = self._routes.get(path)
            if endpoint is None:
                endpoint = next((app for prefix, app in self._prefixes if path.startswith(prefix)), None)
        if endpoint is None:
            await self.fallback(scope, receive, send)
        else:
            await endpoint(scope, receive, send)


def create_app(settings: Settings) -> ASGIApp:
    """Build the gateway for ``settings``. Serve it with an ASGI server that runs its lifespan."""
    api_key = settings.openai_api_key.get_secret_value()
    upstream = Upstream(
        settings.openai_base_url,
        api_key,
        idle_timeout=settings.stream_idle_timeout_secs,
        max_response_bytes=settings.max_response_bytes,
        name=DEFAULT_UPSTREAM,
    )
    metrics = GatewayMetrics(
        (*(api.route for api in APIS), MODELS_ROUTE, MODEL_ROUTE), per_tenant=settings.metrics_per_tenant
    )
    table = RoutingTable(settings.routing.model_routes(), DEFAULT_UPSTREAM)
    rng = random.Random()
    upstreams = UpstreamRouter(
        [
            upstream,
            *(
                Upstream(
                    declared.base_url,
                    declared.api_key.get_secret_value() if declared.api_key else "",
                    idle_timeout=settings.stream_idle_timeout_secs,
                    max_response_bytes=settings.max_response_bytes,
                    kind=declared.kind,
                    api_version=declared.api_version,
                    headers=declared.headers,
                    name=declared.name,
                )
                for declared in settings.routing.upstreams
            ),
        ],
        table,
        Balancer(table.deployments(), settings.breaker_policy, rng, metrics.count_breaker_event),
    )
    policy = QuotaPolicy(
        default_quota=settings.default_quota,
        tenant_quotas=settings.tenant_quotas,
        window_secs=settings.quota_window_secs,
        rps=settings.rps,
        burst=settings.burst,
        default_token_quota=settings.default_token_quota,
        tenant_token_quotas=settings.tenant_token_quotas,
        token_window_secs=settings.token_quota_window_secs,
        max_output_tokens=settings.default_max_output_tokens,
    )
    tenant_hash_key = _secret_bytes(settings.tenant_hash_key)
    # Tenants appear in the decision log as in the access log (and spans).
    tenant_names = TenantNames(
        settings.tenant_label, policy.declares, settings.metrics_max_tenants, tenant_hash_key
    )
    authorization = Authorization(
        settings.policies,
        default_allow=settings.policy_default == "allow",
        pseudonym=tenant_names.attribute,
        on_denied=metrics.count_policy_denial,
        on_error=metrics.count_policy_error,
    )
    key_hash_secret = _secret_bytes(settings.key_hash_secret)
    key_ring = KeyRing(key_hash_secret) if settings.auth_mode == "keys" and key_hash_secret else None
    store = (
        RedisStore(
            settings.redis_url,
            timeout=settings.redis_timeout_ms / 1000,
            policy=policy,
            on_error=metrics.quota_backend_errors.inc,
            storage_id=storage_id(settings.privacy_mode, tenant_hash_key),
            key_ring=key_ring,
            on_policies=authorization.replace_published,
            cluster=settings.redis_cluster,
        )
        if settings.redis_url
        else None
    )
    admission = Admission(
        policy,
        LocalLimits(),
        store,
        failure_mode=settings.quota_failure_mode,
        configured_replicas=settings.gateway_replicas,
    )
    tracing = (
        Tracing(settings.otel_exporter_otlp_endpoint, settings.otel_service_name)
        if settings.otel_exporter_otlp_endpoint
        else None
    )
    access_log = (
        AccessLog(sys.stderr)
        if settings.access_log and logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)
        else None
    )
    telemetry = Telemetry(
        metrics,
        tracing,
        tenants=tenant_names,
        models=BoundedLabel(settings.metrics_models, settings.metrics_max_models),
        access_log=access_log,
    )
    identify = Identify(
        key_ring, allow_anonymous=settings.allow_anonymous, trusted_proxies=settings.trusted_proxies
    )

    failover = Failover(
        upstreams,
        settings.retry_policy,
        RetryBudget(settings.upstream_retry_budget_ratio, settings.upstream_retry_budget_min_per_sec),
        telemetry,
        rng=rng,
    )
    probe = UpstreamProbe(upstream) if settings.upstream_readiness_probe else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await upstreams.start()
        if store is not None:
            await store.start()
        if probe is not None:
            probe.start()
        try:
            yield
        finally:
            if probe is not None:
                await probe.close()
            if store is not None:
                await store.close()
            await upstreams.close()
            if access_log is not None:
                access_log.flush()
            if tracing is not None:
                tracing.shutdown(_TRACE_FLUSH_SECS)

    def redis_check() -> tuple[bool, str]:
        if store is None:
            return True, "not configured (embedded store)"
        if store.available:
            return True, "ok"
        mode = settings.quota_failure_mode
        return mode != "closed", f"unavailable (QUOTA_FAILURE_MODE={mode})"

    app = FastAPI(title="secure-llm-gateway", version=__version__, lifespan=lifespan)
    # One limit and one body budget for every API: they protect the replica, whatever it serves.
    limit = ConcurrencyLimit(settings.max_concurrency)
    buffered_bodies = ConcurrencyLimit(settings.max_buffered_body_bytes)
    redactor = _redactor(settings)
    pii_detector = _pii_detector(settings, redactor)
    stream_timings = StreamTimings(
        keepalive=settings.stream_keepalive_secs, idle=settings.stream_idle_timeout_secs
    )
    endpoints: dict[str, ASGIApp] = {
        api.route: APIEndpoint(
            api,
            upstreams,
            failover,
            limit=limit,
            buffered_bodies=buffered_bodies,
            telemetry=telemetry,
            admission=admission,
            authorization=authorization,
            identify=identify,
            max_body_bytes=settings.max_body_bytes,
            max_json_depth=settings.max_json_depth,
            max_json_elements=settings.max_json_elements,
            first_byte_timeout=settings.timeout_secs,
            non_stream_timeout=settings.non_stream_timeout_secs,
            stream_timings=stream_timings,
            stream_usage=settings.stream_usage,
            redactor=redactor,
            pii_detector=pii_detector,
        )
        for api in APIS
    }
    models = Models(
        upstream,
        telemetry=telemetry,
        identify=identify,
        policy=policy,
        authorization=authorization,
        router=upstreams,
        first_byte_timeout=settings.timeout_secs,
        idle_timeout=settings.stream_idle_timeout_secs,
        upstream_secret=api_key,
        routed=upstreams.table.exact(),
    )
    checks: dict[str, Check] = {
        "upstream": probe.check if probe else lambda: (upstream.ready, "ok" if upstream.ready else "closed"),
        "redis": redis_check,
    }
    if key_ring is not None:  # without the key map no request can be admitted
        checks["api_keys"] = lambda: (
            key_ring.loaded,
            f"{len(key_ring)} registered" if key_ring.loaded else "not loaded yet",
        )
    app.include_router(health_router(checks))

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = add_proxy_paths(document, APIS, MODELS_ROUTE, MODEL_ROUTE)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    _install_error_handlers(app)
    app.add_middleware(
        PrometheusInstrumentatorMiddleware,
        should_group_status_codes=False,  # 429 and 503 must stay apart from other 4xx/5xx
        instrumentations=[metrics.observe_http],
        registry=metrics.registry,
    )
    router = HotPathRouter({**endpoints, MODELS_ROUTE: models}, {MODEL_PREFIX: models}, fallback=app)
    if not settings.cors_allow_origins:
        return router
    # Starlette's CORS implementation, around everything (the hot-path endpoints included): it
    # answers preflights itself and adds the headers to every response of an allowed origin.
    return CORSMiddleware(
        router,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["GET", "POST"],
        # Browsers ask for what the SDKs send: `authorization`, `x-stainless-*`, `openai-beta`, ...
        allow_headers=["*"],
        expose_headers=list(_EXPOSED_HEADERS),
        max_age=600,
    )


def _secret_bytes(secret: SecretStr | None) -> bytes | None:
    return secret.get_secret_value().encode() if secret is not None else None


def _redactor(settings: Settings) -> Redactor | None:
    if not settings.redaction:
        return None
    key = _secret_bytes(settings.redaction_hash_key)
    return Redactor(
        Replacer(settings.redact_mode, key), settings.redact_entities, settings.redact_phone_regions
    )


def _pii_detector(settings: Settings, redactor: Redactor | None) -> Redactor:
    """What finds the PII a tenant policy reads (``context.pii``): every entity type, whatever
    ``REDACT_ENTITIES`` says (the redactor itself when it finds them all)."""
    if redactor is not None and set(settings.redact_entities) == set(Entity):
        return redactor
    return Redactor(Replacer("mask"), list(Entity), settings.redact_phone_regions)


#: Response headers a browser client may read (with CORS on): what SDKs act on and what ids a request.
_EXPOSED_HEADERS = (
    "x-request-id",
    "x-upstream-request-id",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "openai-processing-ms",
    "openai-version",
    "x-gateway-overhead-ms",
)

#: The API endpoints, as a 404 lists them.
_ENDPOINTS = (*(f"POST {api.route}" for api in APIS), "GET /v1/models", "GET /v1/models/{model}")


def _install_error_handlers(app: FastAPI) -> None:
    """Render framework errors (unknown route, wrong method, bad params) in the OpenAI error shape."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error: GatewayError
        if exc.status_code == 404:
            error = NotFound(unknown_endpoint(request.method, request.url.path))
        elif exc.status_code == 405:
            error = MethodNotAllowed("method not allowed for this endpoint")
        else:
            error = GatewayError(str(exc.detail))
            error.status = exc.status_code
        return _render(error, exc.headers)

    async def validation_error(_: Request, exc: Exception) -> Response:
        return _render(InvalidRequest("invalid request parameters"), None)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def unknown_endpoint(method: str, path: str) -> str:
    """The 404 message: the method and path asked for (bounded), the endpoints there are, and a
    hint when the path is one of them without its ``/v1`` (a base URL missing ``/v1`` is the
    commonest client mistake)."""
    shown = path if len(path) <= 200 else path[:200] + "..."
    message = f"unknown endpoint {method} {shown}; this gateway serves {', '.join(_ENDPOINTS)}"
    routes = {endpoint.split(" ", 1)[1] for endpoint in _ENDPOINTS}
    prefixed = "/v1" + path.rstrip("/")
    if prefixed in routes or prefixed.startswith("/v1/models/"):
        message += f". Did you mean /v1{shown}? Set the client's base URL to end in /v1"
    return message


def _render(error: GatewayError, headers: Mapping[str, str] | None) -> Response:
    return Response(error.body(), error.status, headers=headers, media_type="application/json")
