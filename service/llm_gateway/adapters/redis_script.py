"""One Redis script called over one pipelined connection, replies parsed by hiredis (the hot path).

The admission script runs once per request. Through redis-py a call costs about 130 µs of CPU on
its own (pool, command packing, reading the reply: bench/RESULTS.md, "The hot path"), which was
most of what Redis added to a request. :class:`ScriptConnection` keeps one connection for the
script: each call writes its ``EVALSHA`` at once, without waiting for the replies before it, and
the replies, which Redis sends in the order it was asked, are parsed with hiredis as they arrive
and handed to their callers in that order. Calls made in one event-loop turn leave in one write.
Each script still runs atomically in Redis, one after the other, exactly as separate calls would:
pipelining changes the round trips, not what is counted.

The connection is opened on first use, and again after it is lost; opening it loads the script.
``REDIS_URL`` is read by redis-py's own URL parser, so every form it accepts works the same here:
``redis://``, ``rediss://`` (TLS, with redis-py's ``ssl_*`` options) and ``unix://``, a username
and password (``AUTH``) and a database number (``SELECT``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, cast

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

__all__ = ["ScriptConnection", "ScriptRunner"]

_Arg = str | int | float | bytes


class ScriptRunner(Protocol):
    """One script, run with ``keys`` and ``args``: over :class:`ScriptConnection` on a single Redis,
    over :class:`~llm_gateway.adapters.redis_cluster.ClusterScript` on a Redis Cluster."""

    async def call(self, keys: Sequence[_Arg], args: Sequence[_Arg]) -> Any: ...

    def close(self) -> None: ...


class ScriptConnection:
    """``await connection.call(keys, args)``: the reply of the script run with ``keys`` and ``args``.

    Use from one event loop. A call raises :class:`redis.exceptions.ConnectionError` when the
    connection cannot be opened or is lost before its reply (the next call opens a new one) and
    :class:`redis.exceptions.ResponseError` when the script fails; it waits as long as its caller
    lets it (bound it with ``asyncio.timeout``; a caller that gives up leaves the others' replies in
    place). A Redis that lost its scripts (restarted) gets the script loaded again, once per call.
    """

    def __init__(self, url: str, script: str) -> None:
        options = parse_url(url)
        tls = options.pop("connection_class", None) is SSLConnection
        self._ssl = SSLConnection(**options).ssl_context.get() if tls else None
        self._path: str | None = options.get("path")
        self._host: str = options.get("host", "localhost")
        self._port: int = options.get("port", 6379)
        self._load = _pack("SCRIPT", "LOAD", script)
        self._handshake = [
            *_handshake(options.get("username"), options.get("password"), options.get("db", 0)),
            self._load,  # so calls do not all meet NOSCRIPT first
        ]
        self._sha = hashlib.sha1(script.encode()).hexdigest()
        self._pipe: _Pipe | None = None
        self._opening = asyncio.Lock()

    async def call(self, keys: Sequence[_Arg], args: Sequence[_Arg]) -> Any:
        pipe = self._pipe if self._pipe is not None and self._pipe.open else await self._open()
        command = _pack("EVALSHA", self._sha, len(keys), *keys, *args)
        try:
            return _checked(await pipe.send(command))
        except NoScriptError:
            _checked(await pipe.send(self._load))
            return _checked(await pipe.send(command))

    def close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None

    async def _open(self) -> _Pipe:
        async with self._opening:  # callers arriving together share one new connection
            if self._pipe is not None and self._pipe.open:
                return self._pipe
            loop = asyncio.get_running_loop()
            try:
                if self._path is not None:
                    _, pipe = await loop.create_unix_connection(_Pipe, self._path)
                else:
                    _, pipe = await loop.create_connection(_Pipe, self._host, self._port, ssl=self._ssl)
            except OSError as exc:
                raise RedisConnectionError(f"cannot connect to Redis: {exc}") from None
            for command in self._handshake:
                try:
                    _checked(await pipe.send(command))
                except BaseException:
                    pipe.close()
                    raise
            self._pipe = pipe
            return pipe


class _Pipe(asyncio.Protocol):
    """The connection: commands written as they come, replies matched to them in order."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._lost: Exception | None = None
        self._outgoing: list[bytes] = []  # commands of this loop turn, written together after it

    @property
    def open(self) -> bool:
        return self._lost is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a stream transport (uvloop's is no subclass)

    def send(self, command: bytes) -> asyncio.Future[Any]:
        """The future reply to ``command`` (one packed command)."""
        if self._lost is not None:
            raise self._lost
        assert self._transport is not None
        future = self._loop.create_future()
        self._waiting.append(future)
        if not self._outgoing:
            self._loop.call_soon(self._write)
        self._outgoing.append(command)
        return future

    def _write(self) -> None:
        commands, self._outgoing = self._outgoing, []
        if self._lost is None and self._transport is not None:
            self._transport.write(b"".join(commands))

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                future = self._waiting.popleft()
                if not future.done():  # a caller that gave up has cancelled its future
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError):  # not Redis speaking, or a reply nobody asked for
            self._fail(RedisConnectionError("Redis sent an unreadable reply"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError("connection to Redis lost"))

    def close(self) -> None:
        self._fail(RedisConnectionError("connection to Redis closed"))

    def _fail(self, error: Exception) -> None:
        if self._lost is None:
            self._lost = error
            if self._transport is not None:
                self._transport.close()
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)


def _handshake(username: str | None, password: str | None, db: int | str) -> list[bytes]:
    """The commands that prepare a new connection: ``AUTH`` and ``SELECT`` as the URL asks."""
    commands: list[bytes] = []
    if password is not None:
        credentials = (username, password) if username else (password,)
        commands.append(_pack("AUTH", *credentials))
    if int(db):
        commands.append(_pack("SELECT", int(db)))
    return commands


def _pack(*parts: _Arg) -> bytes:
    """One command in the Redis protocol."""
    packed: bytes = hiredis.pack_command(parts)  # type: ignore[arg-type]  # its stub types a 1-tuple
    return packed


def _checked(reply: Any) -> Any:
    """``reply``, or the error Redis replied with, raised as redis-py would raise it."""
    if isinstance(reply, hiredis.ReplyError):
        message = str(reply)
        raise NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)
    return reply
