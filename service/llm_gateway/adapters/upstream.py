"""An upstream API (OpenAI, Azure OpenAI, Anthropic, OpenAI-compatible), through one aiohttp session.

aiohttp rather than httpx on the hot path: the same pass-through proxy costs about ten times more
CPU per request with httpx's pool (``bench/upstream_clients.py``). pyreqwest (Rust's reqwest)
costs half of aiohttp's, but a request cancelled before its response headers keeps running, its
connection open, until the upstream answers (pyreqwest 0.15.1; bench/RESULTS.md, "The hot path"):
a client that leaves must stop the upstream's generation at once, so aiohttp it is. Everything
aiohttp raises is translated here into :class:`~llm_gateway.errors.UpstreamError` (502) or
:class:`~llm_gateway.errors.UpstreamTimeout` (504), a connection that could not be made into
:class:`~llm_gateway.errors.UpstreamUnreachable` (a 502 too); callers never see library exceptions.
Certificates of an ``https://`` upstream are verified against the system's roots
(``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are honoured).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp.payload import BytesPayload
from yarl import URL

from llm_gateway.core.headers import passed_response_headers
from llm_gateway.core.routing import UpstreamKind
from llm_gateway.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable

__all__ = ["Upstream", "UpstreamResponse", "too_large"]

#: How many distinct upstream URLs are kept parsed (the fixed API paths, and some model ids).
_CACHED_URLS = 64
#: The Messages API version sent to an Anthropic upstream when the client names none.
_ANTHROPIC_VERSION = "2023-06-01"


class UpstreamResponse:
    """An upstream response whose headers and first body chunk have arrived.

    The owner must end it with :meth:`close`; used as an async context manager, it is closed on exit.
    """

    __slots__ = (
        "_done",
        "_response",
        "client_headers",
        "content_type",
        "first_chunk",
        "headers",
        "max_bytes",
        "request_id",
        "status",
    )

    def __init__(
        self, response: aiohttp.ClientResponse, first_chunk: bytes, secret: str, max_bytes: int
    ) -> None:
        self._response = response
        #: The most of the body the gateway reads (whole, or one streamed event).
        self.max_bytes = max_bytes
        self._done = False
        self.status = response.status
        self.content_type = response.headers.get("Content-Type", "application/json")
        self.first_chunk = first_chunk
        #: Every upstream header, case-insensitive (``retry-after`` and the like).
        self.headers: Mapping[str, str] = response.headers
        #: The upstream headers the client gets, and the upstream's own request id (see
        #: :func:`~llm_gateway.core.headers.passed_response_headers`).
        self.client_headers, self.request_id = passed_response_headers(response.headers, secret)

    async def read_rest(self, idle_timeout: float) -> bytes:
        """Everything after the first chunk; the upstream may not pause longer than ``idle_timeout``,
        nor send more than ``max_bytes`` in all (:class:`UpstreamError` ``upstream_response_too_large``)."""
        parts, size = [], len(self.first_chunk)
        while chunk := await self.next_chunk(idle_timeout):
            size += len(chunk)
            if size > self.max_bytes:
                raise too_large(self.max_bytes)
            parts.append(chunk)
        if chunk is None:
            raise UpstreamTimeout("upstream stopped sending the response")
        return b"".join(parts)

    async def read_some(self, limit: int, idle_timeout: float) -> bytes:
        """At most about ``limit`` bytes of the body from its start (an error body's message); whatever
        the upstream does after that, or an error or timeout while reading, ends the read early."""
        parts, size = [self.first_chunk], len(self.first_chunk)
        try:
            while size < limit and (chunk := await self.next_chunk(idle_timeout)):
                parts.append(chunk)
                size += len(chunk)
        except UpstreamError:
            pass
        self.close()
        return b"".join(parts)[:limit]

    async def next_chunk(self, wait: float) -> bytes | None:
        """The next body chunk, ``b""`` at the end, or ``None`` when ``wait`` seconds pass without data.

        A ``None`` leaves the response usable: call again to keep waiting.
        """
        content = self._response.content
        try:
            # Data that is already buffered needs no timer: the common case under load.
            data = content.read_nowait()
            if data or content.at_eof():
                return data
            timeout = asyncio.timeout(wait)
            async with timeout:
                return await content.readany()
        except TimeoutError:
            if timeout.expired():
                return None
            raise UpstreamError("upstream stream timed out") from None
        except aiohttp.ClientError:
            raise UpstreamError("upstream stream was interrupted") from None

    def close(self) -> None:
        """End the response: a body read to its end gives the connection back to the pool; otherwise
        the connection is closed, and the upstream sees the request cancelled."""
        if not self._done:
            self._done = True
            if self._response.content.at_eof():
                self._response.release()
            else:
                self._response.close()

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Upstream:
    """One pooled HTTP client for an upstream API, opened at start-up and closed at shutdown.

    ``base_url`` may end in ``/v1`` or not (``https://api.openai.com`` and
    ``http://mock:4000/v1`` both work); API paths are appended after ``/v1``. ``kind`` says how the
    upstream wants its key and paths: ``openai`` and ``openai-compatible`` a bearer token
    (``openai-compatible`` may have none), ``anthropic`` an ``x-api-key`` and an
    ``anthropic-version`` (``2023-06-01`` unless the client sent its own), ``azure-openai`` an
    ``api-key``, paths under ``/openai/deployments/{model}`` and ``api-version`` in the query.
    ``headers`` go with every request. Redirects are never followed, so nothing a client sends
    can make the gateway call another host or path.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        idle_timeout: float,
        max_response_bytes: int,
        kind: UpstreamKind = "openai",
        api_version: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "default",
    ) -> None:
        base = base_url.rstrip("/")
        url = URL(base)
        #: (host, port) for telemetry (``server.address``, ``server.port``).
        self.address = (url.host or "", url.port or 0)
        self.name = name
        self.kind = kind
        self._azure = kind == "azure-openai"
        if self._azure:
            self._prefix = base.removesuffix("/openai") + "/openai/deployments/"
            self._query = "?" + urlencode({"api-version": api_version or ""})
        else:
            self._prefix = base if base.endswith("/v1") else base + "/v1"
            self._query = ""
        self._auth = {**(headers or {}), **_credentials(kind, api_key)}
        self._defaults = {"anthropic-version": _ANTHROPIC_VERSION} if kind == "anthropic" else {}
        self._api_key = api_key
        self._idle_timeout = idle_timeout
        self._max_response_bytes = max_response_bytes
        self._urls: dict[str, URL] = {}
        self._session: aiohttp.ClientSession | None = None

    @property
    def secret(self) -> bytes:
        """The key, as bytes: what must never reach a client (see :mod:`llm_gateway.core.scrub`)."""
        return self._api_key.encode()

    @property
    def ready(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._session is not None and not self._session.closed

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,  # MAX_CONCURRENCY bounds in-flight requests; the pool must not queue them
            ttl_dns_cache=300,
            keepalive_timeout=30,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            trust_env=False,  # never route the upstream key through a proxy named in the environment
            cookie_jar=aiohttp.DummyCookieJar(),  # upstream cookies must not leak from one tenant to the next
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def open(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        first_byte_timeout: float | None,
        model: str | None = None,
    ) -> UpstreamResponse:
        """Send a request to ``/v1{path}`` and wait for its headers and first body chunk.

        ``first_byte_timeout`` bounds that wait (``None``: the idle timeout does). ``headers`` are
        the client headers already filtered for forwarding; the gateway's own credentials and
        content type are added here. ``model`` names the Azure deployment (other kinds ignore it).
        """
        if self._session is None:
            raise UpstreamError("upstream client is not started")
        if self._azure:
            # The deployment is one path segment: `.` and `..` are spelled out so that no model name
            # can move the request to another path of the upstream.
            deployment = quote(model or "", safe="")
            path = (deployment if deployment not in (".", "..") else deployment.replace(".", "%2E")) + path
        url = self._urls.get(path)
        if url is None:
            url = URL(self._prefix + path + self._query, encoded=True)  # paths come percent-encoded
            if len(self._urls) < _CACHED_URLS:  # model ids in paths are the client's: bounded
                self._urls[path] = url
        for name, value in self._defaults.items():
            headers.setdefault(name, value)
        headers.update(self._auth)
        # A ready payload skips aiohttp's per-request payload-type lookup.
        data = None if body is None else BytesPayload(body, content_type="application/json")
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(first_byte_timeout or self._idle_timeout):
                response = await self._session.request(
                    method, url, data=data, headers=headers, allow_redirects=False
                )
                first_chunk = await response.content.readany()
        except TimeoutError:
            _close(response)
            raise UpstreamTimeout("upstream timed out") from None
        except aiohttp.ClientConnectorError:
            raise UpstreamUnreachable("upstream unavailable") from None
        except aiohttp.ClientError:
            _close(response)
            raise UpstreamError("upstream unavailable", code="upstream_unavailable") from None
        except BaseException:
            _close(response)
            raise
        return UpstreamResponse(response, first_chunk, self._api_key, self._max_response_bytes)


def _credentials(kind: UpstreamKind, api_key: str) -> dict[str, str]:
    if kind == "anthropic":
        return {"x-api-key": api_key}
    if kind == "azure-openai":
        return {"api-key": api_key}
    if kind == "openai-compatible" and not api_key:
        return {}
    return {"Authorization": f"Bearer {api_key}"}


def too_large(limit: int) -> UpstreamError:
    """The error for an upstream answer (or streamed event) beyond ``MAX_RESPONSE_BYTES``."""
    return UpstreamError(f"upstream answer exceeds {limit} bytes", code="upstream_response_too_large")


def _close(response: aiohttp.ClientResponse | None) -> None:
    if response is not None:
        response.close()
