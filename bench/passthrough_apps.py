"""Minimal pass-through ASGI apps, one per upstream client, for ``upstream_clients.py``.

Each forwards the request body to ``UPSTREAM`` (env) with one shared client and returns the answer:
no validation, no timeouts, nothing else, so the difference between them is the client's own cost.
Serve with ``uvicorn bench.passthrough_apps:aiohttp_app`` (or ``httpx_app``, ``pyreqwest_app``).
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import httpx
from pyreqwest.client import Client, ClientBuilder

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:4000") + "/v1/chat/completions"
JSON = {"Content-Type": "application/json"}


async def _lifespan(receive: Any, send: Any, open_client: Any, close_client: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await open_client()
            await send({"type": "lifespan.startup.complete"})
        else:
            await close_client()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _answer(send: Any, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


class _AiohttpApp:
    session: aiohttp.ClientSession

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._open, self._close)
            return
        body = (await receive())["body"]
        async with self.session.post(UPSTREAM, data=body, headers=JSON) as response:
            await _answer(send, await response.read())

    async def _open(self) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def _close(self) -> None:
        await self.session.close()


class _HttpxApp:
    client: httpx.AsyncClient

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._open, self._close)
            return
        body = (await receive())["body"]
        response = await self.client.post(UPSTREAM, content=body, headers=JSON)
        await _answer(send, response.content)

    async def _open(self) -> None:
        self.client = httpx.AsyncClient(limits=httpx.Limits(max_connections=200))

    async def _close(self) -> None:
        await self.client.aclose()


class _PyreqwestApp:
    client: Client

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._open, self._close)
            return
        body = (await receive())["body"]
        response = await self.client.post(UPSTREAM).headers(JSON).body_bytes(body).build().send()
        await _answer(send, bytes(await response.bytes()))

    async def _open(self) -> None:
        self.client = ClientBuilder().build()

    async def _close(self) -> None:
        await self.client.close()


aiohttp_app = _AiohttpApp()
httpx_app = _HttpxApp()
pyreqwest_app = _PyreqwestApp()
