"""CancelOnDisconnect: the server's signal (the gateway's own protocol) or a watcher task (any other)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn

from llm_gateway.api.connection_guard import (
    DISCONNECT_EXTENSION,
    ConnectionLimits,
    DisconnectSignal,
    guarded_protocol,
)
from llm_gateway.api.disconnect import CancelOnDisconnect


def _scope(signal: DisconnectSignal | None) -> dict[str, Any]:
    return {"type": "http", "extensions": {DISCONNECT_EXTENSION: {"signal": signal}} if signal else {}}


async def _never() -> dict[str, Any]:
    await asyncio.Event().wait()
    return {}


async def _wait_inside(guard: CancelOnDisconnect, started: asyncio.Event) -> str:
    async with guard:
        started.set()
        await asyncio.sleep(10)
        return "finished"
    return "cancelled"


def test_the_servers_signal_cancels_the_work_and_the_cancellation_is_swallowed() -> None:
    async def scenario() -> tuple[str, bool]:
        signal, started = DisconnectSignal(), asyncio.Event()
        guard = CancelOnDisconnect(_scope(signal), _never)
        task = asyncio.create_task(_wait_inside(guard, started))
        await started.wait()
        signal.fire()
        return await asyncio.wait_for(task, 1), guard.client_left

    assert asyncio.run(scenario()) == ("cancelled", True)


def test_a_client_that_left_before_the_work_began_cancels_it_at_once() -> None:
    async def scenario() -> str:
        signal = DisconnectSignal()
        signal.fire()
        return await asyncio.wait_for(
            _wait_inside(CancelOnDisconnect(_scope(signal), _never), asyncio.Event()), 1
        )

    assert asyncio.run(scenario()) == "cancelled"


def test_a_loss_after_the_work_ended_cancels_nothing() -> None:
    async def scenario() -> bool:
        signal = DisconnectSignal()
        async with CancelOnDisconnect(_scope(signal), _never):
            pass
        signal.fire()
        await asyncio.sleep(0.01)
        return asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    assert asyncio.run(scenario())


def test_without_the_signal_a_watcher_reads_the_disconnect_from_receive() -> None:
    async def scenario() -> str:
        started = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await started.wait()
            return {"type": "http.disconnect"}

        return await asyncio.wait_for(_wait_inside(CancelOnDisconnect(_scope(None), receive), started), 1)

    assert asyncio.run(scenario()) == "cancelled"


def _serve_until(app: Any, client: Any, done: Any) -> None:
    """Run ``app`` under uvicorn with the gateway's protocol, call ``client(port)``, then wait for
    ``done()`` (at most 10 s) and stop the server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limits = ConnectionLimits(read_timeout_secs=5, max_header_bytes=8192, max_connections=10)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=guarded_protocol(limits), log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        client(port)
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.should_exit = True
        thread.join(10)


def _waiting_app(outcome: dict[str, Any]) -> Any:
    """An app whose requests wait inside CancelOnDisconnect; notes each one's signal and result."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()  # the (empty) body
        outcome.setdefault("signals", []).append(scope["extensions"][DISCONNECT_EXTENSION]["signal"])
        result = await _wait_inside(CancelOnDisconnect(scope, receive), asyncio.Event())
        outcome.setdefault("results", []).append(result)

    return app


def _hang_up_after(requests: int, outcome: dict[str, Any]) -> Any:
    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n" * requests)
            deadline = time.monotonic() + 10
            while not outcome.get("signals") and time.monotonic() < deadline:
                time.sleep(0.01)

    return client


def test_the_gateways_server_signals_a_client_that_hangs_up_mid_request() -> None:
    outcome: dict[str, Any] = {}
    _serve_until(_waiting_app(outcome), _hang_up_after(1, outcome), lambda: "results" in outcome)
    [signal] = outcome["signals"]
    assert isinstance(signal, DisconnectSignal) and signal.lost
    assert outcome["results"] == ["cancelled"]


def test_a_hang_up_with_pipelined_requests_cancels_the_one_being_served() -> None:
    outcome: dict[str, Any] = {}
    _serve_until(_waiting_app(outcome), _hang_up_after(3, outcome), lambda: "results" in outcome)
    assert outcome["results"] == ["cancelled"]  # the first; the queued ones never started
