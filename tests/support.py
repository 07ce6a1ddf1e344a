"""Real processes for integration tests: the gateway and the mock, started on free ports.

Each process runs with a clean environment (only what the test gives it, plus PATH/HOME) in a
temporary working directory, so a developer's ``.env`` never leaks into a test. Output goes to a
log file that is printed when a test fails to start a process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

__all__ = [
    "ManagedProcess",
    "RedisServer",
    "free_port",
    "node_chat",
    "prepared_tool",
    "start_gateway",
    "start_local",
    "start_mock",
]

START_TIMEOUT_S = 20.0
ROOT = Path(__file__).resolve().parents[1]
#: The processes run this tree's code, whichever checkout the venv's editable install names (a git
#: worktree shares the venv of its main checkout).
TREE_PYTHONPATH = os.pathsep.join(str(ROOT / part) for part in ("service", "operator", "."))


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ManagedProcess:
    """A subprocess with a base URL; ``stop()`` sends SIGTERM, then SIGKILL after ``grace`` s."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        workdir: Path,
        port: int,
        cwd: Path | None = None,
        *,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        """``verify``: the process serves HTTPS, with a certificate this context trusts."""
        self.url = f"{'https' if verify else 'http'}://127.0.0.1:{port}"
        self._verify: ssl.SSLContext | bool = verify or True
        self.port = port
        self.log_path = workdir / f"{name}-{port}.log"
        # The machine's own trust settings pass too: a `make run` that has to install needs them.
        kept = ("PATH", "HOME", "LANG", "SSL_CERT_FILE", "SSL_CERT_DIR")
        base_env = {key: os.environ[key] for key in kept if key in os.environ}
        base_env["PYTHONPATH"] = TREE_PYTHONPATH
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # Its own process group, so stop() also ends what it started (make -> run_local.sh -> servers).
        self.proc = subprocess.Popen(
            args,
            env={**base_env, **env},
            cwd=cwd or workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()  # closes its log: left open, it fails a later test with a ResourceWarning
                raise RuntimeError(f"process exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + path, timeout=1.0, verify=self._verify).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"process not ready after {START_TIMEOUT_S} s:\n{self.output()}")

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        """Send SIGTERM without waiting (for graceful-shutdown tests)."""
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM to the process group, SIGKILL after ``grace`` s; the group's leftovers are killed."""
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self._signal_group(signal.SIGKILL)
        self._log.close()
        return self.proc.returncode

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)


def start_mock(
    workdir: Path, verify: ssl.SSLContext | None = None, *, port: int | None = None, **env: str
) -> ManagedProcess:
    """Start ``openaimock`` on ``port`` (a free one by default); ``env`` overrides its settings (e.g.
    ``LATENCY_MS``).

    With ``TLS_CERT_FILE`` and ``TLS_KEY_FILE`` in ``env`` it serves HTTPS: ``verify`` must trust it.
    """
    port = port or free_port()
    process = ManagedProcess(
        "openaimock",
        [sys.executable, "-m", "openaimock"],
        {"PORT": str(port), "INTER_TOKEN_MS": "0", **env},
        workdir,
        port,
        verify=verify,
    )
    process.wait_ready("/v1/models")
    return process


def gateway_start_up(env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the gateway with only ``env`` as its environment, for a configuration it refuses: its exit
    status and output (it must exit by itself within 30 s)."""
    return subprocess.run(
        [sys.executable, "-m", "llm_gateway"],
        env={"PYTHONPATH": TREE_PYTHONPATH, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def mock_stat_reaches(mock: ManagedProcess, name: str, value: int, timeout: float = 10) -> int:
    """The mock's counter ``name`` (``GET /_mock/stats``) once it reaches ``value``, or after ``timeout``
    seconds, whatever it is then."""
    deadline = time.monotonic() + timeout
    while (
        seen := int(httpx.get(mock.url + "/_mock/stats").json()[name])
    ) < value and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def start_gateway(workdir: Path, upstream_url: str, **env: str) -> ManagedProcess:
    """Start the gateway on a free port in front of ``upstream_url``; ``env`` adds settings.

    Quotas and rate limits are generous unless ``env`` sets them, so tests about other behaviour
    never trip them by accident; so are circuit breakers, which the mock's per-request faults
    (``mock:status=503``) would otherwise open for every later test of a shared gateway.
    """
    port = free_port()
    settings = {
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "OPENAI_API_KEY": "sk-upstream-secret-0123456789",
        "OPENAI_BASE_URL": upstream_url,
        "RPS": "100000",
        "BURST": "100000",
        "DEFAULT_QUOTA": "1000000",
        "CIRCUIT_BREAKER_FAILURES": "1000000",
        "CIRCUIT_BREAKER_MIN_REQUESTS": "1000000",
        **env,
    }
    process = ManagedProcess("gateway", [sys.executable, "-m", "llm_gateway"], settings, workdir, port)
    process.wait_ready("/healthz")
    return process


def prepared_tool(name: str) -> str:
    """The path of a binary ``make tools`` prepared (``scripts/tools.sh``: helm, etcd, kubelet, ...).

    Tests never build or download: when the tool is missing this fails the test with the script's one
    line naming ``make tools``, not with a traceback or a build that outlives the test's timeout.
    """
    result = subprocess.run(
        [str(ROOT / "scripts" / "tools.sh"), "path", name], capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        pytest.fail(result.stderr.strip(), pytrace=False)
    return result.stdout.strip()


def start_local(workdir: Path, **env: str) -> ManagedProcess:
    """Start the mock and the gateway the way ``make run`` does (``scripts/run_local.sh``), on free ports.

    ``env`` adds gateway settings, as a user would put them in front of ``make run``.
    """
    port = free_port()
    settings = {
        "VENV": sys.prefix,
        "MOCK_PORT": str(free_port()),
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        **env,
    }
    process = ManagedProcess(
        "make-run", ["bash", str(ROOT / "scripts" / "run_local.sh")], settings, workdir, port
    )
    process.wait_ready("/healthz")
    return process


class RedisServer:
    """A real ``redis-server`` on a free port, without persistence; can be killed and restarted."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        password: str | None = None,
        unix_socket: bool = False,
        config: Sequence[str] = (),
    ) -> None:
        """``password``: clients must ``AUTH``; ``unix_socket``: it also listens on ``socket_path``;
        ``config``: more ``--name value`` arguments (files it writes go to ``workdir``)."""
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.socket_path = workdir / f"redis-{self.port}.sock"
        self._extra = ["--requirepass", password] if password else []
        if unix_socket:
            self._extra += ["--unixsocket", str(self.socket_path)]
        self._extra += config
        self._workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None
        self._frozen = False
        self._client = redis.Redis(port=self.port, password=password, socket_timeout=2)
        self.start()

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *self._extra,
            ],
            cwd=self._workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    @property
    def answering(self) -> bool:
        """Started, and neither killed nor frozen."""
        return self._proc is not None and not self._frozen

    def kill(self) -> None:
        """Stop at once (SIGKILL): data is lost, as in a crash of a Redis without persistence."""
        self._client.connection_pool.disconnect()
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        self._frozen = False

    def freeze(self) -> None:
        """SIGSTOP: the port stays open but nothing answers, as with a Redis stuck or overloaded."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)
        self._frozen = False

    def client(self) -> redis.Redis:
        """A client for the test's own checks (reconnects by itself after a restart)."""
        return self._client


def node_chat(base_url: str, api_key: str, model: str, timeout: float = 120) -> dict[str, Any]:
    """One chat completion with the official OpenAI Node SDK at its default settings
    (``tests/clients/node/chat.mjs``): what the caller saw, with the seconds it took."""
    clients = ROOT / "tests" / "clients" / "node"
    if not (clients / "node_modules" / "openai").is_dir():
        pytest.fail("the OpenAI Node SDK is not installed: run `make node-clients` first", pytrace=False)
    result = subprocess.run(
        ["node", "chat.mjs", base_url, api_key, model],
        cwd=clients,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome
