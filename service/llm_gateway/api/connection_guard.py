"""uvicorn's httptools protocol with the limits a server facing untrusted clients needs.

uvicorn bounds none of these by itself: a connection that sends nothing, or sends its headers or
body a byte at a time, is kept forever (its keep-alive timer runs only between requests); headers
may be of any size; and idle keep-alive connections accumulate up to the file-descriptor limit.
:class:`GuardedHttpToolsProtocol` adds, per connection:

- a read deadline: from the connection's start (or the end of the previous response) until the
  request, headers and body, has arrived; when it passes, ``408`` and the connection is closed;
- a cap on the request line plus headers: beyond it, ``431`` and the connection is closed;
- a cap on open connections: a new connection beyond it closes the longest-idle keep-alive one,
  or, when every connection is busy, is answered ``503`` and closed.

Each refusal is a complete OpenAI-style JSON response with ``Connection: close``. The limits are
class attributes, set on a subclass made by :func:`guarded_protocol` (uvicorn instantiates the class
itself, with its own arguments).

It also tells a handler the moment its client's connection is lost: each request's scope carries a
:class:`DisconnectSignal` at ``scope["extensions"][DISCONNECT_EXTENSION]["signal"]`` (see
:class:`~llm_gateway.api.disconnect.CancelOnDisconnect`), which costs nothing until it fires.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from llm_gateway.errors import GatewayError, HeadersTooLarge, Overloaded, RequestTimeout

__all__ = [
    "DISCONNECT_EXTENSION",
    "ConnectionLimits",
    "DisconnectSignal",
    "GuardedHttpToolsProtocol",
    "guarded_protocol",
]

#: The scope extension that carries a request's :class:`DisconnectSignal`.
DISCONNECT_EXTENSION = "llm_gateway.disconnect"


class DisconnectSignal:
    """Fires once when the client's connection is lost before the response completed.

    ``on_lost(callback)`` registers the one callback to call then (``None`` removes it); registered
    after the loss, it is called at once. Callbacks run in the event loop, inside the server's
    ``connection_lost``: they must not block.
    """

    __slots__ = ("_callback", "lost")

    def __init__(self) -> None:
        self.lost = False
        self._callback: Callable[[], None] | None = None

    def on_lost(self, callback: Callable[[], None] | None) -> None:
        self._callback = callback
        if self.lost and callback is not None:
            callback()

    def fire(self) -> None:
        if not self.lost:
            self.lost = True
            if self._callback is not None:
                self._callback()


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    read_timeout_secs: float
    max_header_bytes: int
    max_connections: int


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """See the module docstring. Use :func:`guarded_protocol` to get a class with limits set."""

    limits: ClassVar[ConnectionLimits]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        # The signals of the requests not answered yet, oldest first (HTTP/1.1 answers in order):
        # with pipelining, the one being served is not the newest.
        self._unanswered: deque[DisconnectSignal] = deque()
        if len(self.connections) > self.limits.max_connections and not self._close_an_idle_connection():
            self._refuse(Overloaded("too many open connections"))
            return
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        super().connection_lost(exc)
        while self._unanswered:
            self._unanswered.popleft().fire()

    # Once a request is refused, the rest of what the client sent is parsed (it may already be in
    # the buffer being parsed) but ignored: no callback below acts on it.
    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()
        signal = DisconnectSignal()
        self.scope.setdefault("extensions", {})[DISCONNECT_EXTENSION] = {"signal": signal}
        self._unanswered.append(signal)

    def on_url(self, url: bytes) -> None:
        if self._within_head_limit(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._within_head_limit(len(name) + len(value) + 4):  # ": " and CRLF
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm_deadline()
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        if self._unanswered:
            self._unanswered.popleft()
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_deadline()

    def _within_head_limit(self, size: int) -> bool:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_header_bytes:
            limit = self.limits.max_header_bytes
            self._refuse(HeadersTooLarge(f"request line and headers exceed {limit} bytes"))
        return not self._refused

    def _arm_deadline(self) -> None:
        self._disarm_deadline()
        self._deadline = self.loop.call_later(self.limits.read_timeout_secs, self._read_timed_out)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is not None and cycle.response_started:
            self.transport.close()  # the app answered early (say, a 413); the client is still sending
        else:
            self._refuse(RequestTimeout("the request was not received in time"))

    def _close_an_idle_connection(self) -> bool:
        """Close the longest-idle keep-alive connection (waiting for its next request); False if none.

        Idle connections are those with a keep-alive timer; the earliest timer is the longest idle.
        """
        idle = [
            connection
            for connection in self.connections
            if isinstance(connection, HttpToolsProtocol) and connection.timeout_keep_alive_task is not None
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda connection: connection.timeout_keep_alive_task.when())  # type: ignore[union-attr]
        oldest.transport.close()
        return True

    def _refuse(self, error: GatewayError) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._disarm_deadline()
        body = error.body()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s"
            % (error.status, HTTPStatus(error.status).phrase.encode(), len(body), body)
        )
        self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """A :class:`GuardedHttpToolsProtocol` subclass enforcing ``limits``, for ``uvicorn.Config(http=...)``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
