"""The one pipeline every wire API runs through: the hot path, written as a plain ASGI app.

Plain ASGI (routed in front of the FastAPI app) because FastAPI's request handling costs more than
the whole proxy. Per request: shed load beyond ``MAX_CONCURRENCY``, read and validate what the
gateway needs, identify the tenant, route the model to its upstream (see
:mod:`llm_gateway.core.routing`), decide it against the tenant policies (see
:mod:`llm_gateway.api.authorization`), admit against quota, rate limit and token budget (reserving an
upper bound of the request's tokens, see :mod:`llm_gateway.core.token_budget`), redact PII from the
model text, forward the body (as sent when nothing was redacted, but for a renamed model or an
output limit the budget set), relay JSON or SSE back, redacted, with the ``x-ratelimit-*`` headers,
settle the tokens to what the request cost, and record it. What differs between APIs
comes from their :class:`~llm_gateway.core.apis.WireAPI`; this module names none of them (a test
keeps it so).
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from typing import Any

import orjson

from llm_gateway.adapters.upstream import UpstreamResponse
from llm_gateway.adapters.upstream_router import UpstreamRouter
from llm_gateway.api.admission import Admission
from llm_gateway.api.asgi_io import Receive, Scope, Send, send_error
from llm_gateway.api.authorization import Authorization
from llm_gateway.api.disconnect import CancelOnDisconnect
from llm_gateway.api.failover import Attempt, Failover, UpstreamCall
from llm_gateway.api.identity import Identify
from llm_gateway.api.relay import StreamTimings, off_the_loop, relay_buffered, relay_stream
from llm_gateway.api.request_body import ClientDisconnected, read_json_body, take
from llm_gateway.core import json_codec
from llm_gateway.core.api_request import APIRequest, parse_request
from llm_gateway.core.apis import WireAPI
from llm_gateway.core.balancer import DeploymentState
from llm_gateway.core.concurrency import ConcurrencyLimit
from llm_gateway.core.headers import forwarded_headers
from llm_gateway.core.policy.facts import RequestContext, network_class
from llm_gateway.core.quota import Decision
from llm_gateway.core.redaction import Entity, Redactor, redact_request, redact_response
from llm_gateway.core.refunds import RefundReason, refund_for_error, refund_for_status
from llm_gateway.core.token_budget import Reservation, charge, reserve
from llm_gateway.core.usage import StreamUsage, usage_of
from llm_gateway.errors import GatewayError, InvalidRequest, MethodNotAllowed, Overloaded, UpstreamError
from llm_gateway.telemetry.exchange import FAILED_STREAMS, Exchange
from llm_gateway.telemetry.recorder import Telemetry

__all__ = ["APIEndpoint"]

_ALLOW_POST = [(b"allow", b"POST")]
#: What one parsed JSON element costs at most (a small list or dict and its slot in its container),
#: counted against ``MAX_BUFFERED_BODY_BYTES`` beside the body's own bytes.
PARSED_BYTES_PER_ELEMENT = 64
#: Upstream statuses that mean "not now" about the upstream itself.
UPSTREAM_REFUSALS = frozenset({429, 503})


class APIEndpoint:
    """The endpoint of one wire API; one instance per API, holding no per-request state.

    ``pii_detector`` finds the PII a tenant policy reads (``context.pii``), of every entity type.
    With ``stream_usage``, streamed requests of an API that reports stream usage only when asked
    ask for it (see :mod:`llm_gateway.core.usage`) so that they are metered like the others.
    """

    def __init__(
        self,
        api: WireAPI,
        upstreams: UpstreamRouter,
        failover: Failover,
        *,
        limit: ConcurrencyLimit,
        buffered_bodies: ConcurrencyLimit,
        telemetry: Telemetry,
        admission: Admission,
        authorization: Authorization,
        identify: Identify,
        max_body_bytes: int,
        max_json_depth: int,
        max_json_elements: int,
        first_byte_timeout: float | None,
        non_stream_timeout: float,
        stream_timings: StreamTimings,
        stream_usage: bool,
        redactor: Redactor | None,
        pii_detector: Redactor,
    ) -> None:
        self._api = api
        self._upstreams = upstreams
        self._failover = failover
        self._limit = limit
        self._bodies = buffered_bodies
        self._telemetry = telemetry
        self._metrics = telemetry.metrics
        self._admission = admission
        self._authorization = authorization
        self._identify = identify
        self._max_body_bytes = max_body_bytes
        self._max_json_depth = max_json_depth
        self._max_json_elements = max_json_elements
        self._first_byte_timeout = first_byte_timeout
        self._non_stream_timeout = non_stream_timeout
        self._timings = stream_timings
        self._stream_usage = stream_usage
        self._redactor = redactor
        self._pii_detector = pii_detector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = self._api
        exchange = self._telemetry.begin(api.route, scope, send)
        exchange.operation, exchange.system = api.operation, api.system
        try:
            await self._serve(scope, receive, exchange)
        except GatewayError as error:
            exchange.error = error
            headers = [*exchange.limit_headers, *api.limit_header_copies(error.headers)]
            await send_error(exchange.send, error, api.error_body(error), headers)
        except ClientDisconnected:
            pass  # nobody to answer; recorded as 499
        finally:
            self._telemetry.end(exchange)

    async def _serve(self, scope: Scope, receive: Receive, exchange: Exchange) -> None:
        if scope["method"] != "POST":
            raise MethodNotAllowed("use POST for this endpoint", headers=_ALLOW_POST)
        if not self._limit.try_acquire():
            raise Overloaded("server overloaded")
        try:
            body = await read_json_body(scope, receive, self._max_body_bytes, self._bodies)
            try:
                await self._proxy(scope, receive, exchange, body)
            finally:
                self._bodies.release(len(body))
        finally:
            self._limit.release()

    async def _proxy(self, scope: Scope, receive: Receive, exchange: Exchange, body: bytes) -> None:
        request = await off_the_loop(
            len(body), parse_request, self._api, body, self._max_json_depth, self._max_json_elements
        )
        # The parsed body is held as long as the request: its objects count in the replica's budget.
        parsed = request.elements * PARSED_BYTES_PER_ELEMENT
        take(self._bodies, parsed)
        try:
            await self._admit_and_forward(scope, receive, exchange, body, request)
        finally:
            self._bodies.release(parsed)

    async def _admit_and_forward(
        self, scope: Scope, receive: Receive, exchange: Exchange, body: bytes, request: APIRequest
    ) -> None:
        exchange.model = request.model
        self._telemetry.describe_request(exchange, request.payload)
        # Who asks comes first: nothing about routing is told to a caller the gateway refuses.
        tenant, rate_key = self._identify(scope)
        exchange.tenant = tenant
        if self._redactor is not None and (field := self._api.unredactable(request.payload)) is not None:
            raise InvalidRequest(
                f"'{field}' asks for log probabilities, which {self._api.route} does not return while"
                " the gateway redacts PII",
                code="unsupported_with_redaction",
            )
        group = self._upstreams.route(request.model, self._api.family)
        if not group:
            raise InvalidRequest(
                f"model '{request.model}' is served by an upstream that does not speak {self._api.route}",
                code="model_not_supported_here",
            )
        # The built-in policies (suspension, allowed models), then the tenant policies.
        self._admission.check_access(tenant, request.model)
        if self._authorization.active:
            await self._authorize(scope, exchange, request, len(body), tenant)
        tokens, output_limit = None, None
        budget = self._admission.token_limits(tenant) if self._api.usage is not None else None
        if budget is not None:
            reservation, output_limit = reserve(len(body), request.payload, self._api.output_limits, budget)
            tokens = (budget, reservation)
        decision = await self._admission.admit(tenant, rate_key, tokens)
        exchange.budget = decision.tokens if decision.counted_in is not None else None
        exchange.limit_headers = self._api.limit_headers(decision.headers())
        try:
            await self._forward(scope, receive, exchange, request, body, decision, group, output_limit)
        except GatewayError as error:
            if exchange.status == 0:  # nothing reached the client
                await self._refund(exchange, decision, refund_for_error(error))
            raise
        else:
            if exchange.stream_outcome in FAILED_STREAMS and exchange.first_event_at is None:
                await self._refund(exchange, decision, "stream_failed")
        finally:
            if exchange.budget is not None and exchange.charged is None:
                await self._settle_tokens(exchange, decision)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        exchange: Exchange,
        request: APIRequest,
        body: bytes,
        decision: Decision,
        group: list[DeploymentState],
        output_limit: int | None,
    ) -> None:
        """Redact the request, set the ``output_limit`` its token budget reserved (when it named
        none), send it to a deployment of its model (retrying and falling back, see
        :mod:`llm_gateway.api.failover`) under the model name it knows, relay the answer."""
        api = self._api
        changed = False
        if output_limit is not None and api.output_limits.field is not None:
            request.payload[api.output_limits.field] = output_limit
            changed = True
        redactor = self._redactor
        if redactor is not None:
            found: Counter[Entity] = Counter()
            if await off_the_loop(len(body), redact_request, request.payload, redactor, found, api.locations):
                changed = True
                self._metrics.count_redactions(found, "request")
        client_wants_usage = True
        if request.stream and self._stream_usage and api.ask_for_stream_usage is not None:
            client_wants_usage = api.ask_for_stream_usage(request.payload)
            changed = changed or not client_wants_usage
        sent = body if not changed else request.dumps(request.payload)

        def body_for(model: str | None) -> bytes:
            if model is None or model == request.model:
                return sent
            request.payload["model"] = model
            return request.dumps(request.payload)

        async with CancelOnDisconnect(scope, receive):
            call = UpstreamCall(
                span_name=f"{api.operation} {request.model}",
                path=api.upstream_path,
                body_for=body_for,
                headers=forwarded_headers(scope["headers"]),
                # Unset, a stream's first byte waits as long as the idle timeout allows; a non-stream
                # answer may come only after a reasoning model has thought for minutes.
                first_byte_timeout=self._first_byte_timeout
                or (None if request.stream else self._non_stream_timeout),
                client_model=request.model,
                read_whole=lambda response: not (request.stream and _is_event_stream(response)),
                idle_timeout=self._timings.idle,
            )
            attempt = await self._failover.open(exchange, group, call)
            try:
                await self._relay(exchange, request, decision, attempt, client_wants_usage)
            finally:
                failed = exchange.stream_outcome in FAILED_STREAMS
                self._failover.finish(attempt, failed=failed, tenant=exchange.tenant)

    async def _authorize(
        self, scope: Scope, exchange: Exchange, request: APIRequest, body_bytes: int, tenant: str
    ) -> None:
        """Decide the request against the tenant policies (:class:`PolicyDenied` when they deny it).

        The PII scan a policy may read runs first, and only then (off the loop for a large body).
        """
        api, authorization = self._api, self._authorization
        principal = self._admission.tenant_facts(tenant)
        resource = self._upstreams.describe(request.model, api.family)
        found = None
        if "pii" in authorization.authorizer.reads(principal, api.action, resource):
            found = await off_the_loop(body_bytes, self._find_pii, request)

        def pii() -> list[str]:  # the policies changed meanwhile and read it after all: found now
            return found if found is not None else self._find_pii(request)

        context = RequestContext(
            request.payload,
            body_bytes,
            request.stream,
            api.output_limits,
            pii,
            time.gmtime().tm_hour,
            lambda: network_class(self._identify.client_address(scope)),
        )
        authorization.check(principal, api.action, resource, context, exchange.request_id)

    def _find_pii(self, request: APIRequest) -> list[str]:
        """The PII entity types in the request's model text, of every type the detector knows
        (whatever ``REDACT_ENTITIES`` says): a copy is scanned, the redaction comes later."""
        found: Counter[Entity] = Counter()
        redact_request(copy.deepcopy(request.payload), self._pii_detector, found, self._api.locations)
        return [entity.value for entity in found]

    async def _relay(
        self,
        exchange: Exchange,
        request: APIRequest,
        decision: Decision,
        attempt: Attempt,
        client_wants_usage: bool,
    ) -> None:
        """Relay the chosen attempt's answer: a live SSE stream, or a buffered body."""
        api, redactor, upstream = self._api, self._redactor, attempt.upstream
        async with attempt.response as response:
            reason = refund_for_status(response.status)
            if reason is not None:  # given back before the answer, so its headers say so
                await self._refund(exchange, decision, reason)
            if response.status in UPSTREAM_REFUSALS:
                # The upstream's own wait (`retry-after`) goes out; the tenant's room does not.
                exchange.limit_headers = []
            if request.stream and _is_event_stream(response):
                sse = api.redact_stream(redactor) if redactor is not None else None
                usage = StreamUsage(
                    api.usage_in_streams(), api.locations.outputs, forward_usage=client_wants_usage
                )
                tokens = decision.tokens
                budget = api.stream_budget(tokens.reservation.output) if tokens is not None else None
                try:
                    await relay_stream(
                        response,
                        exchange,
                        self._timings,
                        api,
                        exchange.limit_headers,
                        sse,
                        usage,
                        upstream.secret,
                        budget,
                    )
                finally:
                    exchange.usage = usage.usage
                    if budget is not None and not usage.complete:  # cut, left, or no usage reported
                        exchange.delivered_output = budget.count
                    exchange.response_model = usage.model
                    if sse is not None:
                        self._metrics.count_redactions(sse.found, "response")
            else:
                await relay_buffered(
                    response,
                    exchange,
                    idle_timeout=self._timings.idle,
                    secret=upstream.secret,
                    headers=exchange.limit_headers,
                    transform=self._inspect_answer,
                    passed_statuses=api.passed_statuses,
                )

    async def _refund(self, exchange: Exchange, decision: Decision, reason: RefundReason) -> None:
        """Give the request's quota unit and its whole token reservation back (once); later
        responses report the room it made."""
        if exchange.refund is not None or decision.counted_in is None:
            return
        nothing = None
        if exchange.budget is not None and exchange.charged is None:
            nothing = exchange.charged = Reservation(0, 0)
        if await self._admission.settle(exchange.tenant or "", decision, refund=True, charged=nothing):
            exchange.refund = reason
            self._metrics.refunds[reason].inc()
            exchange.limit_headers = self._api.limit_headers(decision.refunded().headers())

    async def _settle_tokens(self, exchange: Exchange, decision: Decision) -> None:
        """Charge the request's token reservation what the request cost (see
        :func:`~llm_gateway.core.token_budget.charge`), returning the rest."""
        tokens = exchange.budget
        if tokens is None:
            return
        status = exchange.upstream_status
        # No status: the client left while the upstream worked on it (its errors refunded already).
        generated = status is None or 200 <= status < 300
        charged = charge(tokens.reservation, exchange.usage, exchange.delivered_output, generated=generated)
        exchange.charged = charged
        await self._admission.settle(exchange.tenant or "", decision, refund=False, charged=charged)

    def _inspect_answer(self, body: bytes, exchange: Exchange) -> bytes:
        """A successful non-stream body: its usage and model noted, its model text redacted."""
        payload: Any
        try:
            payload, dumps = json_codec.loads(body)
        except ValueError:
            payload, dumps = None, orjson.dumps
        if isinstance(payload, dict):
            exchange.usage = usage_of(payload, self._api.usage) if self._api.usage is not None else None
            model = payload.get("model")
            if isinstance(model, str):
                exchange.response_model = model
        if self._redactor is None:
            return body
        found: Counter[Entity] = Counter()
        try:
            body = redact_response(body, payload, self._redactor, found, self._api.locations, dumps=dumps)
        except RecursionError:  # nested too deeply to write back: never passed on unexamined
            raise UpstreamError(
                "upstream answer is nested too deeply to redact", code="upstream_response_too_deep"
            ) from None
        self._metrics.count_redactions(found, "response")
        return body


def _is_event_stream(response: UpstreamResponse) -> bool:
    """A 200 SSE answer: relayed event by event, never read whole first."""
    return response.status == 200 and response.content_type.lower().startswith("text/event-stream")
