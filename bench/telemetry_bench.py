"""What each piece of telemetry costs per request, measured in-process (no sockets).

Prints microseconds per request (or per stream) for: prometheus-fastapi-instrumentator's middleware
around a trivial ASGI endpoint; the gateway's own per-request record (metrics, with and without the
per-tenant series; with tracing: spans made but not exported, and during a collector outage); the
stream usage watch over one mock stream. Bounded loops only.

    python bench/telemetry_bench.py [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import timeit
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import metrics as instrumentator_metrics
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from llm_gateway.core.sse import SSEDecoder
from llm_gateway.core.usage import StreamUsage, Usage
from llm_gateway.telemetry.labels import BoundedLabel, TenantNames
from llm_gateway.telemetry.metrics import GatewayMetrics
from llm_gateway.telemetry.recorder import Telemetry
from llm_gateway.telemetry.tracing import Tracing
from openaimock.completions import DEFAULT_REPLY, stream_events

ROUTE = "/v1/chat/completions"
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def discard(message: Message) -> None:
    pass


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def http_scope() -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": ROUTE,
        "raw_path": ROUTE.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"traceparent", TRACEPARENT)],
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }


def asgi_cost(app: Callable[[Scope, Receive, Send], Any], n: int) -> float:
    """Microseconds per request of ``app`` called directly."""
    loop = asyncio.new_event_loop()

    async def many() -> None:
        for _ in range(n):
            scope = http_scope()
            scope["app"] = routes
            await app(scope, no_body, discard)

    routes = FastAPI(routes=[Route(ROUTE, endpoint)])
    try:
        return timeit.timeit(lambda: loop.run_until_complete(many()), number=1) / n * 1e6
    finally:
        loop.close()


def record_cost(telemetry: Telemetry, n: int) -> float:
    """Microseconds per request of the gateway's record of one successful chat request."""
    scope = http_scope()
    payload = {"max_tokens": 64, "temperature": 0.2}

    def one() -> None:
        exchange = telemetry.begin(ROUTE, scope, discard)
        exchange.model = "gpt-4o-mini"
        exchange.tenant = "bench-key"
        telemetry.describe_request(exchange, payload)
        telemetry.start_upstream(exchange, "chat gpt-4o-mini", {}, ("127.0.0.1", 4000))
        exchange.upstream_status = exchange.status = 200
        exchange.usage = Usage(12, 20)
        exchange.response_model = "gpt-4o-mini"
        telemetry.end(exchange)

    return timeit.timeit(one, number=n) / n * 1e6


def telemetry(per_tenant: bool, tracing: Tracing | None) -> Telemetry:
    return Telemetry(
        GatewayMetrics((ROUTE,), per_tenant=per_tenant),
        tracing,
        tenants=TenantNames("hash", lambda tenant: False, 100),
        models=BoundedLabel((), 50),
        access_log=None,  # its cost is measured in bench/security_bench.py
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20000, help="requests per measurement")
    args = parser.parse_args()
    n = args.n
    latency = instrumentator_metrics.latency(registry=CollectorRegistry())
    assert latency is not None
    instrumented = PrometheusInstrumentatorMiddleware(
        endpoint, instrumentations=[latency], registry=CollectorRegistry()
    )
    rows = [
        ("bare ASGI endpoint", asgi_cost(endpoint, n)),
        ("same, inside prometheus-fastapi-instrumentator's middleware", asgi_cost(instrumented, n)),
        ("gateway record: metrics, per-tenant series on", record_cost(telemetry(True, None), n)),
        ("gateway record: metrics, per-tenant series off", record_cost(telemetry(False, None), n)),
    ]
    unexported = Tracing("http://127.0.0.1:9", "bench")
    unexported._provider._active_span_processor._span_processors = ()  # spans made, never exported
    rows.append(
        ("same + tracing: 2 spans made, not exported", record_cost(telemetry(True, unexported), n // 4))
    )
    # Port 9 (discard) is closed on loopback: every export is refused. Measured once the gateway has
    # noticed (the first export stalls in the exporter's retries), i.e. during a lasting outage.
    absent = Tracing("http://127.0.0.1:9", "bench")
    record_cost(telemetry(True, absent), 600)  # a batch's worth of spans, to start an export
    deadline = time.monotonic() + 10
    while absent.exporter.accepting and time.monotonic() < deadline:
        time.sleep(0.1)
    rows.append(
        ("same + tracing, collector down (after detection)", record_cost(telemetry(True, absent), n // 4))
    )
    absent.shutdown(0.1)
    events = SSEDecoder().decode(
        b"".join(stream_events({"stream_options": {"include_usage": True}}, DEFAULT_REPLY, "id"))
    )

    def watch() -> None:
        usage = StreamUsage(forward_usage=False)
        for event in events:
            usage.process([event])

    rows.append(
        (f"stream usage watch, one {len(events)}-event stream", timeit.timeit(watch, number=n) / n * 1e6)
    )
    print("| what | µs per request |\n|---|---|")
    for name, micros in rows:
        print(f"| {name} | {micros:.1f} |")


if __name__ == "__main__":
    main()
