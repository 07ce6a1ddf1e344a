"""The upstream OpenAI-compatible API, through one shared pyreqwest client (Rust's reqwest and hyper).

pyreqwest rather than aiohttp on the hot path: the same pass-through proxy spends about half the CPU
per request with it (``bench/upstream_clients.py``; bench/RESULTS.md, "The hot path"). Everything
the client raises is translated here into :class:`~llm_gateway.errors.UpstreamError` (502) or
:class:`~llm_gateway.errors.UpstreamTimeout` (504); callers never see library exceptions.
Certificates are verified against the system's roots (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are
honoured), as Python's own TLS does.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import TracebackType

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError
from pyreqwest.http import HeaderMap
from pyreqwest.request import StreamRequest
from pyreqwest.response import Response, ResponseBodyReader

from llm_gateway import __version__
from llm_gateway.core.headers import passed_response_headers
from llm_gateway.errors import UpstreamError, UpstreamTimeout

__all__ = ["Upstream", "UpstreamResponse"]

#: Bytes the client reads ahead of the gateway. One: each chunk is handed over as it arrives, so a
#: stream's first event is not held back until a buffer fills.
_READ_AHEAD_BYTES = 1


class UpstreamResponse:
    """An upstream response whose headers and first body chunk have arrived.

    The owner must end it with :meth:`close`; used as an async context manager, it is closed on exit.
    """

    __slots__ = (
        "_done",
        "_reader",
        "_request",
        "client_headers",
        "content_type",
        "first_chunk",
        "request_id",
        "status",
    )

    def __init__(self, request: StreamRequest, response: Response, first_chunk: bytes, secret: str) -> None:
        self._request = request
        self._reader: ResponseBodyReader = response.body_reader
        self._done = False
        headers = _Headers(response.headers)
        self.status = response.status
        self.content_type = headers.get("content-type") or "application/json"
        self.first_chunk = first_chunk
        #: The upstream headers the client gets, and the upstream's own request id (see
        #: :func:`~llm_gateway.core.headers.passed_response_headers`).
        self.client_headers, self.request_id = passed_response_headers(headers, secret)

    async def read_rest(self, idle_timeout: float) -> bytes:
        """Everything after the first chunk; the upstream may not pause longer than ``idle_timeout``."""
        parts = []
        while chunk := await self.next_chunk(idle_timeout):
            parts.append(chunk)
        if chunk is None:
            raise UpstreamTimeout("upstream stopped sending the response")
        return b"".join(parts)

    async def read_some(self, limit: int, idle_timeout: float) -> bytes:
        """At most about ``limit`` bytes of the body from its start (an error body's message), then
        the response is closed; whatever the upstream does after that, or an error or timeout while
        reading, ends the read early."""
        parts, size = [self.first_chunk], len(self.first_chunk)
        try:
            while size < limit and (chunk := await self.next_chunk(idle_timeout)):
                parts.append(chunk)
                size += len(chunk)
        except UpstreamError:
            pass
        await self.close()
        return b"".join(parts)[:limit]

    async def next_chunk(self, wait: float) -> bytes | None:
        """The next body chunk, ``b""`` at the end, or ``None`` when ``wait`` seconds pass without data.

        A ``None`` leaves the response usable: call again to keep waiting (an interrupted read
        loses nothing).
        """
        timeout = asyncio.timeout(wait)
        try:
            async with timeout:
                chunk = await self._reader.read_chunk()
        except TimeoutError:
            if timeout.expired():
                return None
            raise UpstreamError("upstream stream timed out") from None
        except PyreqwestError:
            raise UpstreamError("upstream stream was interrupted") from None
        return b"" if chunk is None else bytes(chunk)

    async def close(self) -> None:
        """End the response: a body read to its end gives the connection back to the pool; otherwise
        the connection is closed, and the upstream sees the request cancelled."""
        if not self._done:
            self._done = True
            await self._request.__aexit__(None, None, None)

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _Headers:
    """Header lookup that treats a value which is not UTF-8 (a hostile upstream's) as absent."""

    __slots__ = ("_headers",)

    def __init__(self, headers: HeaderMap) -> None:
        self._headers = headers

    def get(self, name: str, /) -> str | None:
        try:
            return self._headers.get(name)
        except ValueError:
            return None


class Upstream:
    """One pooled HTTP client for the upstream API, opened at start-up and closed at shutdown.

    ``base_url`` may end in ``/v1`` or not (``https://api.openai.com`` and
    ``http://mock:4000/v1`` both work); API paths are appended after ``/v1``. Redirects are never
    followed, so nothing a client sends can make the gateway call another host or path; no proxy
    from the environment is used and no cookies are kept, so nothing of one tenant's call reaches
    the next. HTTP/1.1 with ``TCP_NODELAY``; gzip and deflate bodies are decompressed (the redactor
    reads the text).
    """

    def __init__(self, base_url: str, api_key: str, *, idle_timeout: float) -> None:
        base = base_url.rstrip("/")
        self._prefix = base if base.endswith("/v1") else base + "/v1"
        self._auth = f"Bearer {api_key}"
        self._api_key = api_key
        self._idle_timeout = idle_timeout
        self._client: Client | None = None

    @property
    def ready(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._client is not None

    async def start(self) -> None:
        self._client = (
            ClientBuilder()
            .max_connections(None)  # MAX_CONCURRENCY bounds in-flight requests; the pool must not queue them
            .connect_timeout(timedelta(seconds=10))
            .pool_idle_timeout(timedelta(seconds=30))
            .follow_redirects(False)
            .no_proxy()  # never route the upstream key through a proxy named in the environment
            .default_cookie_store(False)
            .http1_only()
            .tcp_nodelay(True)
            .gzip(True)
            .deflate(True)
            .brotli(False)
            .zstd(False)
            .user_agent(f"secure-llm-gateway/{__version__}")
            .build()
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def open(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        first_byte_timeout: float | None,
    ) -> UpstreamResponse:
        """Send a request to ``/v1{path}`` and wait for its headers and first body chunk.

        ``first_byte_timeout`` bounds that wait (``None``: the idle timeout does). ``headers`` are
        the client headers already filtered for forwarding; the gateway's own credentials and
        content type are added here. ``path`` comes percent-encoded.
        """
        if self._client is None:
            raise UpstreamError("upstream client is not started")
        headers["authorization"] = self._auth
        if body is not None:
            headers["content-type"] = "application/json"
        request: StreamRequest | None = None
        response: Response | None = None
        try:
            builder = self._client.request(method, self._prefix + path).headers(headers)
            if body is not None:
                builder = builder.body_bytes(body)
            request = builder.streamed_read_buffer_limit(_READ_AHEAD_BYTES).build_streamed()
            async with asyncio.timeout(first_byte_timeout or self._idle_timeout):
                response = await request.__aenter__()
                first_chunk = await response.body_reader.read_chunk()
        except BaseException as exc:
            if request is not None and response is not None:
                await request.__aexit__(None, None, None)
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout("upstream timed out") from None
            if isinstance(exc, PyreqwestError):
                raise UpstreamError("upstream unavailable", code="upstream_unavailable") from None
            raise
        first = b"" if first_chunk is None else bytes(first_chunk)
        return UpstreamResponse(request, response, first, self._api_key)
