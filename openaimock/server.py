"""The mock's HTTP server (aiohttp.web): the old Node mock's contract plus what gateway tests need.

APIs: ``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/completions``, ``/v1/embeddings``
and Anthropic's ``/v1/messages`` and ``/v1/messages/count_tokens``
(each with the same directives: echo, status, latency, drops, scripts; streams where the API
streams; also under Azure OpenAI's ``/openai/deployments/{deployment}/...`` paths),
``GET /v1/models`` and ``/v1/models/{id}``.

Settings (environment): ``PORT`` (4000), ``HOST`` (127.0.0.1), ``LATENCY_MS`` (0: delay before
anything, headers included), ``INTER_TOKEN_MS`` (120: delay between streamed chunks; 0 sends the
whole stream in one write), ``ECHO`` (``1``: every reply echoes the last user message),
``SCRIPT_DIR`` (where ``script=NAME`` finds ``NAME.json``; unset: registered scripts only).

Test endpoints: ``GET /_mock/last-request`` (method, path, query, headers, body of the last API request),
``GET /_mock/stats`` (request and stream counters, including streams the client cancelled),
``PUT /_mock/scripts/{name}`` (register a script, see :mod:`openaimock.scripts`),
``PUT /_mock/fault`` (the body, directives such as ``status=500,retry-after=2``, applies to every
API request until ``DELETE /_mock/fault``, or to the next N with ``?times=N``: a fault injected
into a running upstream) and
``POST /_mock/reset`` (counters, last request, registered scripts and the fault).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from openaimock.completions import DEFAULT_REPLY, completion, reply_text, stream_events
from openaimock.directives import Directives, parse_directives
from openaimock.legacy import completion_text, embedding, text_completion, text_completion_events
from openaimock.messages import message, message_events, message_input_text, token_count
from openaimock.responses import response, response_events, response_input_text
from openaimock.scripts import Script, ScriptBook

__all__ = ["MockConfig", "create_app"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_exceeded",
}


@dataclass(frozen=True, slots=True)
class MockConfig:
    latency_ms: int = 0
    inter_token_ms: int = 120
    echo: bool = False
    script_dir: Path | None = None

    @classmethod
    def from_env(cls) -> MockConfig:
        script_dir = os.environ.get("SCRIPT_DIR")
        return cls(
            latency_ms=int(os.environ.get("LATENCY_MS", "0")),
            inter_token_ms=int(os.environ.get("INTER_TOKEN_MS", "120")),
            echo=os.environ.get("ECHO", "0").lower() in ("1", "true", "yes"),
            script_dir=Path(script_dir) if script_dir else None,
        )


@dataclass(slots=True)
class _State:
    last_request: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "requests",
                "streams_started",
                "streams_completed",
                "streams_cancelled",
                "streams_dropped",
            ),
            0,
        )
    )
    ids: itertools.count[int] = field(default_factory=itertools.count)
    fault: str | None = None
    fault_times: int | None = None  # requests the fault still applies to (None: until cleared)


_MODELS = ("gpt-4o-mini", "gpt-4o", "org/model-7b")


@dataclass(frozen=True, slots=True)
class _Answers:
    """How one API answers: ``echo(payload)`` is the text an echo repeats; ``body(payload, text,
    id)`` a whole answer; ``events(payload, text, id, chunk_chars)`` a stream (None: no streams)."""

    echo: Callable[[dict[str, Any]], str]
    body: Callable[[dict[str, Any], str, str], bytes]
    events: Callable[[dict[str, Any], str, str, int | None], list[bytes]] | None
    id_prefix: str


_APIS = {
    "/v1/chat/completions": _Answers(
        lambda payload: reply_text(payload, True), completion, stream_events, "chatcmpl-mock"
    ),
    "/v1/responses": _Answers(response_input_text, response, response_events, "resp_mock"),
    "/v1/completions": _Answers(completion_text, text_completion, text_completion_events, "cmpl-mock"),
    "/v1/messages": _Answers(message_input_text, message, message_events, "msg_mock"),
    "/v1/messages/count_tokens": _Answers(
        lambda _: "", lambda payload, _, __: token_count(payload), None, "msg_mock"
    ),
    "/v1/embeddings": _Answers(lambda _: "", lambda payload, _, __: embedding(payload), None, "emb-mock"),
}


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "openaimock"}


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return _json(status, {"error": {"message": message, "type": kind, "code": f"mock_{status}"}})


def create_app(config: MockConfig) -> web.Application:
    """Build the mock for ``config``."""
    state = _State()
    scripts = ScriptBook(config.script_dir)

    def answering(answers: _Answers) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await answer(request, answers)

        return handler

    async def answer(request: web.Request, answers: _Answers) -> web.StreamResponse:
        raw = await request.read()
        state.stats["requests"] += 1
        state.last_request = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": raw.decode("utf-8", "replace"),
        }
        try:
            payload = orjson.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
            directives = parse_directives(
                request.headers.get("X-Mock"), str(payload.get("model") or ""), state.fault
            )
            if state.fault_times is not None:
                state.fault_times -= 1
                if state.fault_times <= 0:
                    state.fault, state.fault_times = None, None
            script = scripts.get(directives.script) if directives.script is not None else None
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            return _error(400, f"invalid request: {exc}")
        if script is not None:
            return await _play(request, script)
        latency = directives.latency_ms if directives.latency_ms is not None else config.latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)
        if directives.status is not None:
            message = f"mock failure {directives.status} as requested"
            if directives.echo_auth:
                message += f" (credentials received: {request.headers.get('Authorization', '')})"
            error = _error(directives.status, message)
            if directives.retry_after is not None:
                error.headers["Retry-After"] = str(directives.retry_after)
            if directives.retry_after_ms is not None:
                error.headers["retry-after-ms"] = str(directives.retry_after_ms)
            return error
        if directives.reply is not None:
            text = directives.reply
        else:
            text = answers.echo(payload) if directives.echo or config.echo else DEFAULT_REPLY
        request_id = f"{answers.id_prefix}-{next(state.ids)}"
        if answers.events is not None and payload.get("stream") is True:
            events = (
                _GARBAGE
                if directives.garbage
                else answers.events(payload, text, request_id, directives.chunk_chars)
            )
            return await _stream(request, events, directives)
        if directives.drop_after is not None:
            _drop(request)
            return web.Response()  # never written: the connection is gone
        return web.Response(body=answers.body(payload, text, request_id), content_type="application/json")

    async def _stream(
        request: web.Request, events: list[bytes], directives: Directives
    ) -> web.StreamResponse:
        delay = directives.inter_token_ms if directives.inter_token_ms is not None else config.inter_token_ms
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            state.stats["streams_started"] += 1
            if not delay and directives.drop_after is None:
                await response.write(b"".join(events))
            else:
                for index, event in enumerate(events):
                    if directives.drop_after is not None and index >= directives.drop_after:
                        state.stats["streams_dropped"] += 1
                        # Half an event, then the connection drops: the worst case for a relay.
                        await response.write(event[: len(event) // 2])
                        _drop(request)
                        return response
                    await response.write(event)
                    if delay:
                        await asyncio.sleep(delay / 1000)
            await response.write_eof()
        except ConnectionResetError:  # the client went away: normal for a load generator, not an error
            state.stats["streams_cancelled"] += 1
            return response
        state.stats["streams_completed"] += 1
        return response

    async def _play(request: web.Request, script: Script) -> web.StreamResponse:
        response = web.StreamResponse(
            status=script.status, headers={**dict(script.headers), "Content-Type": script.content_type}
        )
        try:
            await response.prepare(request)
            for chunk in script.writes:
                await response.write(chunk)
                if script.write_delay_ms:
                    await asyncio.sleep(script.write_delay_ms / 1000)
            await response.write_eof()
        except ConnectionResetError:
            state.stats["streams_cancelled"] += 1
        return response

    async def put_fault(request: web.Request) -> web.Response:
        text = (await request.read()).decode("utf-8", "replace").strip()
        try:
            parse_directives(None, None, text)
        except ValueError as exc:
            return _error(400, f"invalid fault: {exc}")
        times = request.query.get("times")
        if times is not None and not times.isdigit():
            return _error(400, "times must be a whole number")
        state.fault = text or None
        state.fault_times = int(times) if times is not None and state.fault else None
        return _json(200, {"fault": state.fault, "times": state.fault_times})

    async def clear_fault(_: web.Request) -> web.Response:
        state.fault, state.fault_times = None, None
        return _json(200, {"fault": None})

    async def put_script(request: web.Request) -> web.Response:
        try:
            scripts.register(request.match_info["name"], Script.from_json(await request.read()))
        except ValueError as exc:
            return _error(400, f"invalid script: {exc}")
        return _json(200, {"registered": request.match_info["name"]})

    async def models(_: web.Request) -> web.Response:
        return _json(200, {"object": "list", "data": [_model(name) for name in _MODELS]})

    async def model(request: web.Request) -> web.Response:
        name = request.match_info["model"]
        if name not in _MODELS:
            return _json(
                404,
                {
                    "error": {
                        "message": f"The model `{name}` does not exist or you do not have access to it.",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
        return _json(200, _model(name))

    async def last_request(_: web.Request) -> web.Response:
        return _json(200, state.last_request)

    async def stats(_: web.Request) -> web.Response:
        return _json(200, state.stats)

    async def reset(_: web.Request) -> web.Response:
        state.last_request = {}
        state.fault, state.fault_times = None, None
        scripts.clear()
        for key in state.stats:
            state.stats[key] = 0
        return _json(200, {"reset": True})

    @web.middleware
    async def openai_errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPMethodNotAllowed:
            return _error(405, "method not allowed")
        except web.HTTPNotFound:
            return _error(404, f"no route for {request.path}")

    app = web.Application(middlewares=[openai_errors], client_max_size=64 * 1024 * 1024)
    for route, answers in _APIS.items():
        app.router.add_post(route, answering(answers))
        # Azure OpenAI's shape of the same API: a deployment in the path, `api-version` in the query.
        app.router.add_post(
            "/openai/deployments/{deployment}" + route.removeprefix("/v1"), answering(answers)
        )
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model:.+}", model)
    app.router.add_get("/_mock/last-request", last_request)
    app.router.add_get("/_mock/stats", stats)
    app.router.add_post("/_mock/reset", reset)
    app.router.add_put("/_mock/scripts/{name}", put_script)
    app.router.add_put("/_mock/fault", put_fault)
    app.router.add_delete("/_mock/fault", clear_fault)
    return app


# What a broken upstream might send as a "stream": binary noise, half events, invalid JSON, no [DONE].
_GARBAGE = [
    bytes(range(256)),
    b'data: {"choices": [{"delta": {"content": "unterminated\n\n',
    b"event: \xff\xfe\r\ndata: not json at all\r\n\r\n",
    b"data: " + b"{" * 5000 + b"\n\n",
    b":\n\n\n\ndata:\ndata:\n\n",
]


def _drop(request: web.Request) -> None:
    """Abort the connection, as a directive asked."""
    if request.transport is not None:
        request.transport.abort()
