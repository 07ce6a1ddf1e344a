"""Cancel the request's work the moment its client goes away.

uvicorn's ``send()`` silently drops messages once the client has left, so a handler that waits on
a slow upstream would otherwise hold its concurrency slot and the upstream request until the
upstream finishes. :class:`CancelOnDisconnect` watches ``receive()`` for ``http.disconnect`` and
cancels the handler's task; on the way out it swallows exactly that cancellation.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from llm_gateway.api.asgi_io import Receive

__all__ = ["CancelOnDisconnect"]


class CancelOnDisconnect:
    """Async context manager; ``client_left`` tells afterwards whether the client disconnected.

    Enter it only after the request body has been read: from then on ``receive()`` yields nothing
    but ``http.disconnect`` (which uvicorn also sends once the response is complete, hence the
    ``_active`` flag: a finished response is not a departed client).
    """

    __slots__ = ("_active", "_receive", "_task", "_watcher", "client_left")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._active = False
        self._task: asyncio.Task[object] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.client_left = False

    async def __aenter__(self) -> CancelOnDisconnect:
        self._task = asyncio.current_task()
        self._active = True
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._active = False
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
        if self._active and self._task is not None:
            self.client_left = True
            self._task.cancel()
