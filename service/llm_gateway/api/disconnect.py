"""Cancel the request's work the moment its client goes away.

uvicorn's ``send()`` silently drops messages once the client has left, so a handler that waits on
a slow upstream would otherwise hold its concurrency slot and the upstream request until the
upstream finishes. :class:`CancelOnDisconnect` cancels the handler's task when the client leaves;
on the way out it swallows exactly that cancellation. The gateway's own server
(:mod:`~llm_gateway.api.connection_guard`) signals the loss directly; under any other ASGI server a
task watches ``receive()`` for ``http.disconnect`` (a task per request: without it the gateway
served 15 to 25 % more requests per second, bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from llm_gateway.api.asgi_io import Receive, Scope
from llm_gateway.api.connection_guard import DISCONNECT_EXTENSION, DisconnectSignal

__all__ = ["CancelOnDisconnect"]


class CancelOnDisconnect:
    """Async context manager; ``client_left`` tells afterwards whether the client disconnected.

    Enter it only after the request body has been read: from then on ``receive()`` yields nothing
    but ``http.disconnect`` (which uvicorn also sends once the response is complete, hence the
    ``_active`` flag: a finished response is not a departed client).
    """

    __slots__ = ("_active", "_receive", "_signal", "_task", "_watcher", "client_left")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self._receive = receive
        self._signal: DisconnectSignal | None = (
            (scope.get("extensions") or {}).get(DISCONNECT_EXTENSION, {}).get("signal")
        )
        self._active = False
        self._task: asyncio.Task[object] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.client_left = False

    async def __aenter__(self) -> CancelOnDisconnect:
        self._task = asyncio.current_task()
        self._active = True
        if self._signal is not None:
            self._signal.on_lost(self._cancel)
        else:
            self._watcher = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._active = False
        if self._signal is not None:
            self._signal.on_lost(None)
        if self._watcher is not None:
            self._watcher.cancel()
        if exc_type is asyncio.CancelledError and self.client_left and self._task is not None:
            # Our own cancellation: undo it so the server's task is not left marked as cancelled.
            self._task.uncancel()
            return True
        return False

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self._cancel()

    def _cancel(self) -> None:
        if self._active and self._task is not None:
            self.client_left = True
            self._task.cancel()
