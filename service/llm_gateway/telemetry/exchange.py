"""What the gateway learns about one proxied request while serving it: timings, model, usage, outcome.

Endpoints fill an :class:`Exchange` in as they go; :class:`~llm_gateway.telemetry.recorder.Telemetry`
turns it into metrics and span attributes once the request has ended, however it ended.
"""

from __future__ import annotations

from random import getrandbits
from time import perf_counter
from typing import TYPE_CHECKING, Literal

from starlette.types import Message, Send

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from llm_gateway.core.quota import TokenState
    from llm_gateway.core.token_budget import Reservation
    from llm_gateway.core.usage import Usage
    from llm_gateway.errors import GatewayError

__all__ = ["FAILED_STREAMS", "OVERHEAD_HEADER", "REQUEST_ID_HEADER", "Exchange", "StreamOutcome"]

OVERHEAD_HEADER = b"x-gateway-overhead-ms"
REQUEST_ID_HEADER = b"x-request-id"

StreamOutcome = Literal["completed", "client_cancelled", "upstream_error", "idle_timeout", "budget_exhausted"]
#: The outcomes in which the stream failed.
FAILED_STREAMS: frozenset[StreamOutcome] = frozenset({"upstream_error", "idle_timeout"})


class Exchange:
    """One request's record. Times are ``perf_counter()`` seconds.

    The gateway's overhead is the time since the request reached the endpoint minus the time spent
    waiting for the upstream (``upstream_wait``) and for the client to take what was sent
    (``client_wait``). Use :meth:`send` in place of the ASGI ``send``: it records the status, adds
    the overhead so far as the ``x-gateway-overhead-ms`` response header and the request's id as
    ``x-request-id`` (the id its access line and span carry, and the upstream is sent), and times
    the client. The request id is the caller's ``X-Request-Id`` when that is a safe id
    (:func:`~llm_gateway.core.headers.caller_request_id`), else a new random one.

    ``limit_headers`` are the ``x-ratelimit-*`` headers of an admitted request: every response to
    it carries them, errors included.
    """

    __slots__ = (
        "_send",
        "attempts",
        "budget",
        "charged",
        "client_span",
        "client_wait",
        "delivered_output",
        "deployment",
        "error",
        "first_event_at",
        "limit_headers",
        "method",
        "model",
        "operation",
        "refund",
        "request_id",
        "response_model",
        "route",
        "server_span",
        "start",
        "status",
        "stream_outcome",
        "system",
        "tenant",
        "upstream_request_id",
        "upstream_status",
        "upstream_wait",
        "usage",
    )

    def __init__(self, route: str, method: str, send: Send, request_id: str | None = None) -> None:
        self.start = perf_counter()
        # Not a secret, only unique: the fast generator is enough.
        self.request_id = request_id or f"{getrandbits(64):016x}"
        self.limit_headers: list[tuple[bytes, bytes]] = []
        self.upstream_request_id: str | None = None
        self.refund: str | None = None  # why its quota unit was given back, if it was
        self.route = route
        self.method = method
        self._send = send
        self.upstream_wait = 0.0
        self.client_wait = 0.0
        self.status = 0  # no response started (yet)
        self.model: str | None = None
        # The GenAI operation and provider (`gen_ai.operation.name`, `gen_ai.system`) of an API request.
        self.operation: str | None = None
        self.system: str | None = None
        self.tenant: str | None = None
        self.upstream_status: int | None = None
        #: Upstream attempts made (retries and fallbacks included) and the deployment of the last.
        self.attempts = 0
        self.deployment: str | None = None
        self.response_model: str | None = None
        self.usage: Usage | None = None
        #: Output fragments a stream that did not finish delivered (counted for its token budget).
        self.delivered_output: int | None = None
        #: The request's place in its tenant's token budget, and what it was charged when settled.
        self.budget: TokenState | None = None
        self.charged: Reservation | None = None
        self.first_event_at: float | None = None
        self.stream_outcome: StreamOutcome | None = None
        self.error: GatewayError | None = None  # what the request failed with, if it failed
        self.server_span: Span | None = None
        self.client_span: Span | None = None

    def overhead(self, now: float) -> float:
        """Seconds the gateway itself has spent on the request up to ``now``."""
        return max(now - self.start - self.upstream_wait - self.client_wait, 0.0)

    def waited_for_upstream(self, since: float) -> None:
        """Count the time from ``since`` to now as waiting for the upstream."""
        self.upstream_wait += perf_counter() - since

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            overhead_ms = f"{self.overhead(perf_counter()) * 1000:.3f}".encode()
            message = {
                **message,
                "headers": [
                    *message.get("headers", ()),
                    (OVERHEAD_HEADER, overhead_ms),
                    (REQUEST_ID_HEADER, self.request_id.encode()),
                ],
            }
        started = perf_counter()
        try:
            await self._send(message)
        finally:
            self.client_wait += perf_counter() - started
