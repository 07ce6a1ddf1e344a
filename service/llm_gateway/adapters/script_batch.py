"""Script calls that queue behind a round trip share the next one (group commit).

Under load many requests reach admission while a Redis call is under way; sending each script call
on its own costs each of them a pooled connection, a send and a receive through redis-py.
:class:`ScriptBatch` sends a call at once when nothing is under way (light load pays nothing
extra), and otherwise queues it: when the round trip under way ends, everything queued goes as one
non-transactional pipeline of ``EVALSHA`` commands. Each script still runs atomically in Redis, one
after the other, exactly as separate calls would: batching changes the round trips, not what is
counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

__all__ = ["ScriptBatch"]

_Call = tuple[list[Any], list[Any], "asyncio.Future[Any]"]


class ScriptBatch:
    """``await batch.call(keys, args)``: the reply of the script run with ``keys`` and ``args``
    (single-threaded: one event loop).

    A call fails with the exception the pipeline raised (a connection error, say) or with
    ``TimeoutError`` when the whole batch took longer than ``timeout`` seconds; the caller bounds its
    own wait too. A Redis that lost its scripts (restarted) gets the script loaded again once, and
    the batch is sent again.
    """

    def __init__(self, client: Redis, script: str, *, timeout: float) -> None:
        self._client = client
        self._script = client.register_script(script)
        self._source = script
        self._timeout = timeout
        self._busy = False  # a round trip is under way
        self._pending: list[_Call] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def call(self, keys: list[Any], args: list[Any]) -> Awaitable[Any]:
        if not self._busy:
            return self._alone(keys, args)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((keys, args, future))
        return future

    async def _alone(self, keys: list[Any], args: list[Any]) -> Any:
        """One call sent at once, as a plain script call (which reloads the script on NOSCRIPT)."""
        self._busy = True
        try:
            return await self._script(keys=keys, args=args)
        finally:
            self._busy = False
            self._flush()

    def _flush(self) -> None:
        """Send what queued meanwhile, if anything, as one pipeline."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)  # a reference until it ends, so it is not collected half-way
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            await self._send_batch(batch)
        finally:
            self._busy = False
            self._flush()

    async def _send_batch(self, batch: list[_Call]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                replies = await self._execute(batch)
                if any(isinstance(reply, NoScriptError) for reply in replies):
                    await self._client.script_load(self._source)
                    replies = await self._execute(batch)
        except Exception as exc:  # every caller learns what happened to its call
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if not future.done():  # a caller that gave up has cancelled its future
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args, _ in batch:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            return await pipe.execute(raise_on_error=False)
