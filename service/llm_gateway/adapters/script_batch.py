"""One Redis round trip for all the script calls one event-loop turn makes.

Under load many requests reach admission in the same turn of the event loop; sending each script
call on its own costs each of them a pooled connection, a send and a receive through redis-py.
:class:`ScriptBatch` collects the calls of a turn and sends them as one non-transactional pipeline
of ``EVALSHA`` commands at the end of the turn. Each script still runs atomically in Redis, one
after the other, exactly as separate calls would: batching changes the round trips, not what is
counted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

__all__ = ["ScriptBatch"]

_Call = tuple[list[Any], list[Any], "asyncio.Future[Any]"]


class ScriptBatch:
    """``await batch.call(keys, args)``: the reply of the script run with ``keys`` and ``args``.

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
        self._pending: list[_Call] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def call(self, keys: list[Any], args: list[Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, args, future))
        if len(self._pending) == 1:  # the first call of this turn: send them all when the turn ends
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)  # a reference until it ends, so it is not collected half-way
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Call]) -> None:
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
