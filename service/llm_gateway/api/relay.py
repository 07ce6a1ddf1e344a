"""Relaying an upstream response to the client: buffered JSON or a live SSE stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any, TypeVar

import orjson

from llm_gateway.adapters.upstream import Upstream, UpstreamResponse, too_large
from llm_gateway.api.asgi_io import send_response
from llm_gateway.core.apis import StreamRedaction, WireAPI
from llm_gateway.core.scrub import scrub_bytes, scrub_text
from llm_gateway.core.sse import KEEPALIVE, SSEDecoder, SSEEvent, encode_events
from llm_gateway.core.token_budget import StreamBudget
from llm_gateway.core.usage import StreamUsage
from llm_gateway.errors import GatewayError, TokenBudgetExhausted, UpstreamError
from llm_gateway.telemetry.exchange import Exchange, StreamOutcome

__all__ = ["StreamTimings", "off_the_loop", "open_upstream", "relay_buffered", "relay_stream"]

_T = TypeVar("_T")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # Tells nginx-style ingresses not to buffer the stream.
    (b"x-accel-buffering", b"no"),
]


class StreamTimings:
    """How long a relayed stream may stay silent: comments after ``keepalive``, end after ``idle``."""

    __slots__ = ("idle", "keepalive")

    def __init__(self, *, keepalive: float, idle: float) -> None:
        self.keepalive = keepalive
        self.idle = idle


async def open_upstream(
    upstream: Upstream,
    exchange: Exchange,
    method: str,
    path: str,
    *,
    body: bytes | None,
    headers: dict[str, str],
    first_byte_timeout: float | None,
    model: str | None = None,
) -> UpstreamResponse:
    """:meth:`Upstream.open` with the request's id in ``x-request-id``; the wait, the upstream's status
    and its request id are noted in ``exchange``."""
    headers["x-request-id"] = exchange.request_id
    started = perf_counter()
    try:
        response = await upstream.open(
            method, path, body=body, headers=headers, first_byte_timeout=first_byte_timeout, model=model
        )
    finally:
        exchange.waited_for_upstream(started)
    exchange.upstream_status = response.status
    exchange.upstream_request_id = response.request_id
    return response


async def relay_buffered(
    response: UpstreamResponse,
    exchange: Exchange,
    *,
    idle_timeout: float,
    secret: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    transform: Callable[[bytes, Exchange], bytes] | None = None,
    passed_statuses: frozenset[int] = frozenset(),
) -> None:
    """Read the whole upstream body and answer it with the upstream's status and content type.

    Upstream 5xx and 401 (the gateway's own key refused) become a 502 :class:`UpstreamError` (a 5xx
    keeps the upstream's error message); other statuses pass through with their body. Whatever the
    status, what reaches the client is scrubbed of ``secret`` in case an upstream echoes it. The
    upstream headers a client needs (``UpstreamResponse.client_headers``: ``retry-after`` and the
    like) go out either way, with ``headers`` and the content type; ``transform`` rewrites a
    successful body (and may note what it learns in ``exchange``). ``passed_statuses`` are 5xx
    statuses relayed as they came.
    """
    started = perf_counter()
    try:
        if (response.status >= 500 and response.status not in passed_statuses) or response.status == 401:
            wait = min(idle_timeout, _ERROR_BODY_WAIT_SECS)
            raise _upstream_status_error(response, await response.read_some(_ERROR_BODY_BYTES, wait), secret)
        body = response.first_chunk + await response.read_rest(idle_timeout)
    finally:
        exchange.waited_for_upstream(started)
    response.close()
    body = scrub_bytes(body, secret)
    if response.status < 400 and transform is not None:
        body = await off_the_loop(len(body), transform, body, exchange)
    await send_response(
        exchange.send,
        response.status,
        body,
        [(b"content-type", response.content_type.encode()), *response.client_headers, *headers],
    )


async def relay_stream(
    response: UpstreamResponse,
    exchange: Exchange,
    timings: StreamTimings,
    api: WireAPI,
    headers: Sequence[tuple[bytes, bytes]] = (),
    redactor: StreamRedaction | None = None,
    usage: StreamUsage | None = None,
    secret: bytes = b"",
    budget: StreamBudget | None = None,
) -> None:
    """Relay an upstream SSE stream event by event as it arrives.

    Events are forwarded whole: each upstream read is answered with one message carrying the events
    it completed, and a partial event waits for its end. During upstream silences an SSE comment
    goes out every ``timings.keepalive`` seconds; after ``timings.idle`` seconds of silence, or when
    the upstream fails or ends inside a line, the client gets a final event with the error in the
    shape of ``api`` (a last event of complete lines that no blank line ended is delivered, as
    clients read it). The stream ends after the event ``api`` says is its last.
    ``headers`` are added to the response's own. With ``redactor``, events pass through it: text it
    holds back (a possible entity not yet complete) follows in a later event, and on a failure it is
    dropped, never released unexamined. ``usage`` watches the events for the usage chunk (and may
    remove it). Events are scrubbed of ``secret`` (the upstream key, should an upstream echo it).
    ``budget`` counts output fragments; the stream ends, with a ``budget_exhausted`` error event,
    before the first that would pass what it may carry. How the stream ended goes into
    ``exchange.stream_outcome``.
    """
    try:
        exchange.stream_outcome = await _relay_events(
            response, exchange, timings, api, headers, redactor, usage, secret, budget
        )
    except asyncio.CancelledError:  # the client went away (or shutdown's grace ran out)
        exchange.stream_outcome = "client_cancelled"
        raise


async def _relay_events(
    response: UpstreamResponse,
    exchange: Exchange,
    timings: StreamTimings,
    api: WireAPI,
    headers: Sequence[tuple[bytes, bytes]],
    redactor: StreamRedaction | None,
    usage: StreamUsage | None,
    secret: bytes,
    budget: StreamBudget | None,
) -> StreamOutcome:
    send = exchange.send
    start_headers = [*SSE_HEADERS, *response.client_headers, *headers]
    await send({"type": "http.response.start", "status": 200, "headers": start_headers})
    loop = asyncio.get_running_loop()
    decoder = SSEDecoder()
    chunk: bytes | None = response.first_chunk
    last_data = loop.time()
    error: GatewayError | None = None
    outcome: StreamOutcome = "completed"
    done = False  # the stream's last event went out
    while chunk != b"":
        if chunk is None:
            silent_for = loop.time() - last_data
            if silent_for >= timings.idle:
                error = UpstreamError(
                    f"upstream sent nothing for {timings.idle:g} s", code="stream_idle_timeout"
                )
                outcome = "idle_timeout"
                break
            await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
        else:
            last_data = loop.time()
            events = decoder.decode(chunk)
            try:
                await _forward(events, exchange, redactor, usage, secret, budget)
            except RecursionError:  # an event nested too deeply to write back redacted: not sent
                error = UpstreamError(
                    "upstream event is nested too deeply to redact", code="upstream_response_too_deep"
                )
                outcome = "upstream_error"
                break
            if budget is not None and budget.exhausted:
                error = TokenBudgetExhausted(
                    f"budget_exhausted: this stream reached the {budget.reserved} output tokens its token"
                    " budget reserved for it (its output limit, or the gateway's cap when it named none),"
                    " and the upstream went on past it",
                )
                outcome = "budget_exhausted"
                break
            if decoder.pending_bytes > response.max_bytes:  # an event without end: not held further
                error = too_large(response.max_bytes)
                outcome = "upstream_error"
                break
            if any(map(api.ends_stream, events)):
                # The stream is over for every client (the SDKs stop reading there): end it now,
                # whatever the upstream still sends or however long it keeps its connection.
                done = True
                break
        wait = min(timings.keepalive, timings.idle - (loop.time() - last_data))
        started = perf_counter()
        try:
            chunk = await response.next_chunk(max(wait, 0.0))
        except GatewayError as exc:
            error = exc
            outcome = "upstream_error"
            break
        finally:
            exchange.waited_for_upstream(started)
    if error is None and not done:
        last = decoder.finish()  # an event of complete lines that no blank line ended: deliver it
        if decoder.truncated:
            error = UpstreamError("upstream stream ended in the middle of a line", code="stream_truncated")
            outcome = "upstream_error"
        elif last is not None:
            await _forward([last], exchange, redactor, usage, secret, budget)
    response.close()
    if error is None:
        held = redactor.finish() if redactor is not None else []
        tail = scrub_bytes(encode_events(held), secret) if held else b""
    else:
        exchange.error = error
        tail = api.error_event(error)
    await send({"type": "http.response.body", "body": tail, "more_body": False})
    return outcome


#: One upstream read may hand over many events: they are worked through this many at a time, with
#: the event loop free to serve other requests (health probes among them) in between.
_EVENTS_PER_TURN = 32
#: A batch of events carrying more than this many bytes is worked on in a thread (the regex and
#: hyperscan scans release the GIL), so one enormous event never holds the event loop.
_INLINE_BYTES = 64 * 1024


async def off_the_loop(size: int, work: Callable[..., _T], *args: Any) -> _T:
    """``work(*args)``, in a worker thread when ``size`` (bytes) is over ``_INLINE_BYTES``.

    Redaction of a large body can take seconds of CPU on text dense with candidates; the scans
    release the GIL and the rest gives it up every few milliseconds, so in a thread the event loop
    keeps serving other requests (health probes among them) meanwhile. The thread is not
    interrupted if the client leaves: its work is bounded by the body it was given.
    """
    if size > _INLINE_BYTES:
        return await asyncio.to_thread(work, *args)
    return work(*args)


async def _forward(
    events: list[SSEEvent],
    exchange: Exchange,
    redactor: StreamRedaction | None,
    usage: StreamUsage | None,
    secret: bytes,
    budget: StreamBudget | None = None,
) -> None:
    """Send ``events`` after the usage watcher, the budget and the redactor had them, a bounded batch
    per turn; none after the budget cut the stream.

    Events are whole, so the key cannot straddle two batches: scrubbing each batch's bytes is enough.
    """

    def transform(batch: list[SSEEvent]) -> list[SSEEvent]:
        if budget is not None:  # first: what it cuts off is neither sent nor counted
            batch = budget.process(batch)
        if usage is not None:
            batch = usage.process(batch)
        if redactor is not None and batch:
            batch = redactor.process(batch)
        return batch

    for start in range(0, len(events), _EVENTS_PER_TURN):
        if start:
            await asyncio.sleep(0)
        batch = events[start : start + _EVENTS_PER_TURN]
        size = sum(len(event.raw) for event in batch) if redactor is not None else 0
        batch = await off_the_loop(size, transform, batch)
        if batch:
            if exchange.first_event_at is None:
                exchange.first_event_at = perf_counter()
            body = scrub_bytes(encode_events(batch), secret)
            await exchange.send({"type": "http.response.body", "body": body, "more_body": True})
        if budget is not None and budget.exhausted:
            return


#: How much of an upstream error body is read for its message.
_ERROR_BODY_BYTES = 64 * 1024
#: How long an upstream error body may pause before the message is taken from what arrived.
_ERROR_BODY_WAIT_SECS = 2.0
#: The longest upstream message an error carries.
_ERROR_MESSAGE_CHARS = 1000


def _upstream_status_error(response: UpstreamResponse, body: bytes, secret: bytes) -> UpstreamError:
    """The 502 for an upstream 5xx or 401, with the upstream's headers a client acts on
    (``retry-after``). A 5xx keeps the upstream's own message (``error.message`` of a JSON error
    body, else a short plain-text body), scrubbed of the key also after JSON unescaping and cutting;
    a 401's message (about the gateway's own key) is not passed.
    """
    status = response.status
    if status == 401:
        return UpstreamError(
            "upstream rejected the gateway's credentials",
            code="upstream_auth_failed",
            headers=response.client_headers,
        )
    detail = scrub_text(_error_message(body), secret.decode("latin-1"))
    message = f"upstream returned HTTP {status}" + (f": {detail}" if detail else "")
    return UpstreamError(message, code="upstream_error", headers=response.client_headers)


def _error_message(body: bytes) -> str:
    """The message of an upstream error body, whitespace collapsed, at most ``_ERROR_MESSAGE_CHARS``.

    Only a body read whole counts (one cut at ``_ERROR_BODY_BYTES`` could end inside anything).
    """
    if len(body) >= _ERROR_BODY_BYTES:
        return ""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if not isinstance(message, str):
            message = payload.get("message")
        if isinstance(message, str):
            return " ".join(message.split())[:_ERROR_MESSAGE_CHARS]
    text = body.decode("utf-8", "replace")
    return "" if text.lstrip().startswith("<") else " ".join(text.split())[:_ERROR_MESSAGE_CHARS]
