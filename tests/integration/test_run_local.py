"""`make run` (scripts/run_local.sh) refuses a busy port at once, in one line, before starting anything."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import ROOT, free_port


def run_local_sh(tree: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``scripts/run_local.sh`` of ``tree``, as ``make run`` calls it."""
    script = tree / "scripts" / "run_local.sh"
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("busy", "message"),
    [("MOCK_PORT", "(the mock) is busy"), ("LISTEN_ADDR", "(the gateway) is busy")],
)
def test_a_busy_port_is_named_in_one_line_and_exits_at_once(busy: str, message: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {
            "PATH": "/usr/bin:/bin",
            "VENV": sys.prefix,
            "MOCK_PORT": str(port if busy == "MOCK_PORT" else free_port()),
            "LISTEN_ADDR": f"127.0.0.1:{port if busy == 'LISTEN_ADDR' else free_port()}",
        }
        started = time.monotonic()
        result = run_local_sh(ROOT, env)
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"make run: port {port} {message}; free it or pick another with ")
    assert result.stdout == ""  # no false "openaimock listening" line, no traceback
    assert elapsed < 5


def test_the_listen_address_in_dot_env_is_the_one_checked(tmp_path: Path) -> None:
    # run_local.sh reads .env beside the Makefile, as the gateway does: a copy of the script in a
    # scratch tree keeps this test away from a developer's own .env.
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run_local.sh", tmp_path / "scripts" / "run_local.sh")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (tmp_path / ".env").write_text(f"RPS=5\nLISTEN_ADDR='127.0.0.1:{port}'\n")
        env = {"PATH": "/usr/bin:/bin", "VENV": sys.prefix, "MOCK_PORT": str(free_port())}
        result = run_local_sh(tmp_path, env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"make run: port {port} (the gateway) is busy")
