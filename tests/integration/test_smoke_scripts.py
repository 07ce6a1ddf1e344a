"""The four smoke scripts, run as a user runs them, against the gateway started as `make run` starts it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT, ManagedProcess, RedisServer, start_local


@pytest.fixture
def local(workdir: Path) -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for process in started:
        process.stop()


def run_local(started: list[ManagedProcess], workdir: Path, **env: str) -> ManagedProcess:
    process = start_local(workdir, **env)
    started.append(process)
    return process


def smoke(script: str, gateway: ManagedProcess, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / script)],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOST": gateway.url, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def passed(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout
    return result.stdout


def test_quota_rollover_resets_and_repeats(
    local: list[ManagedProcess], workdir: Path, redis_server: RedisServer
) -> None:
    gateway = run_local(local, workdir, REDIS_URL=redis_server.url, DEFAULT_QUOTA="5")
    redis_cli = f"redis-cli -p {redis_server.port}"
    first = passed(smoke("smoke_test_quota.sh", gateway, REDIS_CLI=redis_cli))
    assert "in order: 200 200 200 200 200 429 429" in first
    again = passed(smoke("smoke_test_quota.sh", gateway, REDIS_CLI=redis_cli))  # the reset worked
    assert "in order: 200 200 200 200 200 429 429" in again
    without_reset = smoke("smoke_test_quota.sh", gateway)
    assert without_reset.returncode == 1 and "FAIL" in without_reset.stderr


def test_quota_script_finds_strict_mode_pseudonyms(
    local: list[ManagedProcess], workdir: Path, redis_server: RedisServer
) -> None:
    gateway = run_local(
        local,
        workdir,
        REDIS_URL=redis_server.url,
        DEFAULT_QUOTA="3",
        PRIVACY_MODE="strict",
        TENANT_HASH_KEY="k1",
    )
    for _ in range(2):
        out = passed(
            smoke(
                "smoke_test_quota.sh",
                gateway,
                REDIS_CLI=f"redis-cli -p {redis_server.port}",
                TENANT_HASH_KEY="k1",
            )
        )
        assert "in order: 200 200 200 429 429 429 429" in out


def test_quota_script_fails_when_nothing_is_refused(local: list[ManagedProcess], workdir: Path) -> None:
    result = smoke("smoke_test_quota.sh", run_local(local, workdir))  # DEFAULT_QUOTA=120 > 7 requests
    assert result.returncode == 1 and "expected some 200s, then only 429s" in result.stderr


def test_quota_script_fails_when_the_429s_are_the_rate_limits(
    local: list[ManagedProcess], workdir: Path
) -> None:
    gateway = run_local(local, workdir, RPS="1", BURST="3")  # quota 120: every 429 is the rate limit
    result = smoke("smoke_test_quota.sh", gateway, KEY="limited")
    assert "in order: 200 200 200 429 429 429 429" in result.stdout  # the shape alone would pass
    assert result.returncode == 1
    assert "expected every 429 to be quota_exceeded, got: rate_limit_exceeded x4" in result.stderr


def test_rate_limit_script_fails_when_the_429s_are_the_quotas(
    local: list[ManagedProcess], workdir: Path, redis_server: RedisServer
) -> None:
    gateway = run_local(local, workdir, REDIS_URL=redis_server.url, DEFAULT_QUOTA="5")  # as the README's
    result = smoke("smoke_test_ratelimit.sh", gateway, REDIS_CLI=f"redis-cli -p {redis_server.port}")
    assert result.returncode == 1
    assert "expected every 429 to be rate_limit_exceeded, got: quota_exceeded x" in result.stderr


def test_rate_limit_mixes_200_and_429(
    local: list[ManagedProcess], workdir: Path, redis_server: RedisServer
) -> None:
    gateway = run_local(local, workdir, REDIS_URL=redis_server.url)  # RPS=5, BURST=10
    out = passed(smoke("smoke_test_ratelimit.sh", gateway, REDIS_CLI=f"redis-cli -p {redis_server.port}"))
    assert "rate-limited" in out


def test_load_shedding_gives_503(local: list[ManagedProcess], workdir: Path) -> None:
    gateway = run_local(local, workdir, MAX_CONCURRENCY="5", RPS="1000", BURST="1000")
    assert "shed with 503" in passed(smoke("smoke_test_load_shed.sh", gateway, REQUESTS="40", PARALLEL="20"))


def test_load_shed_script_fails_without_shedding(local: list[ManagedProcess], workdir: Path) -> None:
    gateway = run_local(local, workdir, RPS="1000", BURST="1000")  # MAX_CONCURRENCY=1024
    result = smoke(
        "smoke_test_load_shed.sh", gateway, REQUESTS="10", PARALLEL="10", MODEL="mock:latency-ms=100"
    )
    assert result.returncode == 1 and "no 503" in result.stderr


def test_timeout_gives_504_after_timeout_secs(local: list[ManagedProcess], workdir: Path) -> None:
    gateway = run_local(local, workdir, TIMEOUT_SECS="2")
    assert "504 after" in passed(smoke("smoke_test_timeout.sh", gateway))
    result = smoke("smoke_test_timeout.sh", gateway, MODEL="gpt-4o-mini")
    assert result.returncode == 1 and "expected 504, got 200" in result.stderr
