"""``GET /v1/models`` and ``GET /v1/models/{model}``, proxied (OpenAI SDKs call both), per tenant.

A tenant sees only what it may use: a suspended tenant gets 403 (as on chat), and a tenant whose
live-map entry lists ``allowedModels`` gets the upstream's list filtered to those, and 404
``model_not_found`` (the OpenAI answer) for any other model it asks about, without an upstream call.
Tenant policies apply as to chat, with the action ``models``: a model they deny is left out of the
list and answers 404 like one not allowed (see :mod:`llm_gateway.api.authorization`). Nothing is
counted against the tenant's quota. Models the routing table names exactly (see
:mod:`llm_gateway.core.routing`) are listed beside the default upstream's, ``owned_by`` their
upstream, and retrieved without an upstream call (their upstreams may have no model endpoints).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.adapters.upstream_router import UpstreamRouter
from llm_gateway.api.asgi_io import JSON_HEADERS, Receive, Scope, Send, send_error, send_response
from llm_gateway.api.authorization import Authorization
from llm_gateway.api.identity import Identify
from llm_gateway.api.relay import open_upstream, relay_buffered
from llm_gateway.core.api_request import is_model_name
from llm_gateway.core.headers import forwarded_headers
from llm_gateway.core.policy.facts import ModelFacts, RequestContext, network_class
from llm_gateway.core.quota_policy import QuotaPolicy
from llm_gateway.core.token_budget import NO_OUTPUT
from llm_gateway.errors import GatewayError, MethodNotAllowed, NotFound
from llm_gateway.telemetry.exchange import Exchange
from llm_gateway.telemetry.recorder import Telemetry

__all__ = ["MODEL_ROUTE", "ROUTE", "Models"]

ROUTE = "/v1/models"
#: The retrieve route, as its metric and span label (the model itself is a path segment).
MODEL_ROUTE = "/v1/models/{model}"
PREFIX = ROUTE + "/"


class Models:
    """Relays the upstream's model list and single models; errors map exactly as for chat completions."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        telemetry: Telemetry,
        identify: Identify,
        policy: QuotaPolicy,
        authorization: Authorization,
        router: UpstreamRouter,
        first_byte_timeout: float | None,
        idle_timeout: float,
        upstream_secret: str,
        routed: Mapping[str, str],
    ) -> None:
        self._upstream = upstream
        self._routed = dict(routed)
        self._telemetry = telemetry
        self._identify = identify
        self._policy = policy
        self._authorization = authorization
        self._router = router
        self._first_byte_timeout = first_byte_timeout
        self._idle_timeout = idle_timeout
        self._secret = upstream_secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        model = path[len(PREFIX) :] if path.startswith(PREFIX) else None
        exchange = self._telemetry.begin(ROUTE if model is None else MODEL_ROUTE, scope, send)
        try:
            await self._serve(scope, exchange, model)
        except GatewayError as error:
            exchange.error = error
            await send_error(exchange.send, error, error.body())
        finally:
            self._telemetry.end(exchange)

    async def _serve(self, scope: Scope, exchange: Exchange, model: str | None) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            raise MethodNotAllowed("use GET for this endpoint", headers=[(b"allow", b"GET")])
        tenant = exchange.tenant = self._identify(scope)[0]
        visible = self._visibility(scope, exchange, tenant)  # raises for a suspended tenant
        transform: Callable[[bytes, Exchange], bytes] | None = None
        if model is None:
            upstream_path = "/models"
            if visible is not None or self._routed:
                transform = _listing(self._routed, visible)
        else:
            exchange.model = model if is_model_name(model) else None
            if (
                not is_model_name(model)
                or model in (".", "..")
                or (visible is not None and not visible(model))
            ):
                shown = model[:200] if model.isprintable() else "(unprintable)"
                raise NotFound(
                    f"The model `{shown}` does not exist or you do not have access to it.",
                    code="model_not_found",
                )
            if model in self._routed:
                body = orjson.dumps(_entry(model, self._routed[model]))
                await send_response(exchange.send, 200, body, JSON_HEADERS)
                return
            upstream_path = "/models/" + quote(model, safe="")
        headers = forwarded_headers(scope["headers"])
        name = f"GET {ROUTE if model is None else MODEL_ROUTE}"
        self._telemetry.start_upstream(exchange, name, headers, self._upstream.address)
        response = await open_upstream(
            self._upstream,
            exchange,
            "GET",
            upstream_path,
            body=None,
            headers=headers,
            first_byte_timeout=self._first_byte_timeout,
        )
        async with response:
            await relay_buffered(
                response, exchange, idle_timeout=self._idle_timeout, secret=self._secret, transform=transform
            )

    def _visibility(self, scope: Scope, exchange: Exchange, tenant: str) -> Callable[[str], bool] | None:
        """Whether ``tenant`` may see a model, by its ``allowedModels`` and the tenant policies (None:
        every model); raises :class:`Forbidden` for a suspended tenant. A model asked for by name is
        decided and logged as a request is; a listing's are not logged (it asks for many)."""
        allowed = self._policy.visible_models(tenant)
        authorization = self._authorization
        if not authorization.active:
            return None if allowed is None else allowed.__contains__
        principal = self._policy.tenant_facts(tenant)
        context = RequestContext(
            {},
            0,
            False,
            NO_OUTPUT,
            list,
            time.gmtime().tm_hour,
            lambda: network_class(self._identify.client_address(scope)),
        )
        request_id = exchange.request_id

        def decided(resource: ModelFacts) -> bool:  # one model: decided, logged and counted
            return authorization.decide(principal, "models", resource, context, request_id).allowed

        one = exchange.route == MODEL_ROUTE
        permits = decided if one else authorization.visible(principal, context)

        def visible(model: str) -> bool:
            if allowed is not None and model not in allowed:
                return False
            return permits(self._router.describe(model))

        return visible


def _entry(model: str, upstream: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": upstream}


def _listing(
    routed: Mapping[str, str], visible: Callable[[str], bool] | None
) -> Callable[[bytes, Exchange], bytes]:
    """A transform that adds the routed models to a model list and keeps the entries whose ``id``
    is ``visible`` (all when None)."""

    def transform(body: bytes, _: Exchange) -> bytes:
        try:
            payload: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):  # nothing unexamined reaches the client
            payload, data = {"object": "list", "data": []}, []
        listed = {m.get("id") for m in data if isinstance(m, dict)}
        data = data + [_entry(model, upstream) for model, upstream in routed.items() if model not in listed]
        payload["data"] = [
            m
            for m in data
            if isinstance(m, dict)
            and (visible is None or (isinstance(m.get("id"), str) and visible(m["id"])))
        ]
        return orjson.dumps(payload)

    return transform
