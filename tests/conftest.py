"""Shared fixtures: a session-wide mock upstream and gateways started on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.otlp_receiver import OTLPReceiver
from tests.redis_cluster import LocalCluster
from tests.support import ManagedProcess, RedisServer, start_gateway, start_mock

UPSTREAM_KEY = "sk-upstream-secret-0123456789"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("procs")


@pytest.fixture(scope="session")
def shared_mock(workdir: Path) -> Iterator[ManagedProcess]:
    mock = start_mock(workdir)
    yield mock
    mock.stop()


@pytest.fixture
def mock(shared_mock: ManagedProcess) -> ManagedProcess:
    """The session's mock upstream, with its counters and last request reset."""
    httpx.post(shared_mock.url + "/_mock/reset").raise_for_status()
    return shared_mock


@pytest.fixture(scope="module")
def gateway(workdir: Path, shared_mock: ManagedProcess) -> Iterator[ManagedProcess]:
    """A gateway with default settings in front of the shared mock."""
    process = start_gateway(workdir, shared_mock.url)
    yield process
    process.stop()


GatewayFactory = Callable[..., ManagedProcess]


@pytest.fixture
def gateway_factory(workdir: Path, shared_mock: ManagedProcess) -> Iterator[GatewayFactory]:
    """Start gateways with extra settings (``upstream=`` picks another upstream URL)."""
    started: list[ManagedProcess] = []

    def factory(upstream: str | None = None, **env: str) -> ManagedProcess:
        process = start_gateway(workdir, upstream or shared_mock.url, **env)
        started.append(process)
        return process

    yield factory
    for process in started:
        process.stop()


@pytest.fixture
def mock_factory(workdir: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Start extra mocks with their own settings (``LATENCY_MS``, ``INTER_TOKEN_MS``, ...)."""
    started: list[ManagedProcess] = []

    def factory(**env: str) -> ManagedProcess:
        process = start_mock(workdir, **env)
        started.append(process)
        return process

    yield factory
    for process in started:
        process.stop()


@pytest.fixture
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    """A fresh, empty redis-server for one test."""
    server = RedisServer(workdir)
    yield server
    server.kill()


@pytest.fixture
def redis_cluster(workdir: Path, request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """A fresh Redis Cluster for one test: three masters, a replica each (see tests/redis_cluster.py);
    parametrized indirectly, ``request.param`` holds LocalCluster's keyword arguments."""
    cluster = LocalCluster(workdir, **getattr(request, "param", {}))
    yield cluster
    cluster.stop()


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A real OTLP/HTTP trace receiver on a free port."""
    receiver = OTLPReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(params=["redis", "embedded"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for the two stores: a real redis-server, or the in-process default."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return {"REDIS_URL": server.url}
    return {}
