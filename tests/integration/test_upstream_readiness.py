"""``/readyz`` and the upstream: not ready until it answered once, then steady through outages."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from tests.support import ManagedProcess, free_port, start_gateway


def readiness(gateway: ManagedProcess) -> tuple[int, str]:
    answer = httpx.get(gateway.url + "/readyz", timeout=5)
    return answer.status_code, answer.json()["checks"]["upstream"]


def wait_for(gateway: ManagedProcess, status: int, timeout: float = 10) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while (seen := readiness(gateway))[0] != status and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def test_not_ready_until_the_upstream_answers_then_ready_through_its_outage(tmp_path: Path) -> None:
    port = free_port()
    gateway = start_gateway(tmp_path, f"http://127.0.0.1:{port}/v1")
    mock: ManagedProcess | None = None
    try:
        assert wait_for(gateway, 503) == (503, "upstream unavailable")
        time.sleep(2.5)  # probes go on every 2 s: still not ready, never flapping to ready
        assert readiness(gateway) == (503, "upstream unavailable")
        mock = ManagedProcess(
            "openaimock", [sys.executable, "-m", "openaimock"], {"PORT": str(port)}, tmp_path, port
        )
        mock.wait_ready("/v1/models")
        assert wait_for(gateway, 200, timeout=5) == (200, "ok")
        mock.stop()
        mock = None
        time.sleep(2.5)
        assert readiness(gateway) == (200, "ok")
    finally:
        gateway.stop()
        if mock is not None:
            mock.stop()


def test_the_probe_can_be_turned_off(tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path, f"http://127.0.0.1:{free_port()}/v1", UPSTREAM_READINESS_PROBE="off")
    try:
        assert readiness(gateway) == (200, "ok")
    finally:
        gateway.stop()
