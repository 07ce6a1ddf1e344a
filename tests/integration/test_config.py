"""Start-up configuration: invalid settings stop the process with one clear line; `.env` is read."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.chat import CHAT, assert_openai_error, chat_body
from tests.support import ManagedProcess, free_port, gateway_start_up

VALID = {"OPENAI_API_KEY": "sk-upstream-secret-0123456789", "LISTEN_ADDR": "127.0.0.1:1"}


@pytest.mark.parametrize(
    ("env", "variable", "problem"),
    [
        ({"RPS": "0"}, "RPS", "greater than 0"),
        ({"BURST": "0"}, "BURST", "greater than or equal to 1"),
        ({"TENANT_QUOTAS": "tenantA=5,tenantB"}, "TENANT_QUOTAS", "'tenantB'"),
        ({"TENANT_QUOTAS": "tenantA=-1"}, "TENANT_QUOTAS", "non-negative integer"),
        ({"OPENAI_BASE_URL": "api.openai.com"}, "OPENAI_BASE_URL", "http:// or https://"),
        ({"TIMEOUT_SECS": "-1"}, "TIMEOUT_SECS", "greater than 0"),
        ({"MAX_CONCURRENCY": "lots"}, "MAX_CONCURRENCY", "integer"),
        ({"LISTEN_ADDR": "8080"}, "LISTEN_ADDR", "host:port"),
        ({"OPENAI_API_KEY": ""}, "OPENAI_API_KEY", "required"),
        ({"QUOTA_FAILURE_MODE": "maybe"}, "QUOTA_FAILURE_MODE", "'local', 'open' or 'closed'"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "TRUSTED_PROXIES", "'proxy' is not an IP"),
        ({"REDACT_MODE": "hash"}, "REDACTION_HASH_KEY", "required when REDACT_MODE=hash"),
        ({"REDACT_ENTITIES": "EMAIL,NAME"}, "REDACT_ENTITIES", "unknown entities ['NAME']"),
        ({"REDIS_URL": "http://127.0.0.1:6379/0"}, "REDIS_URL", "expected redis://"),
        ({"REDIS_URL": "redis://127.0.0.1:99999/0"}, "REDIS_URL", "expected redis://"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/abc"}, "REDIS_URL", "expected redis://"),
        (
            {"REDACT_PHONE_REGIONS": "ES,XX"},
            "REDACT_PHONE_REGIONS",
            "unknown regions ['XX']; use ISO 3166 codes",
        ),
    ],
)
def test_invalid_configuration_refuses_to_start_with_one_clear_line(
    tmp_path: Path, env: dict[str, str], variable: str, problem: str
) -> None:
    result = gateway_start_up({**VALID, **env}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"secure-llm-gateway: invalid configuration: {variable}: ")
    assert problem in lines[0]
    assert "Traceback" not in result.stderr


def test_secrets_are_never_printed_in_config_errors(tmp_path: Path) -> None:
    result = gateway_start_up(
        {
            "OPENAI_API_KEY": "sk-do-not-print-me",
            "RPS": "-3",
            "REDIS_URL": "redis://:redis-pass-do-not-print@127.0.0.1:99999/0",
        },
        tmp_path,
    )
    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr
    assert "do-not-print" not in result.stderr + result.stdout


def test_dotenv_file_in_the_working_directory_is_read(tmp_path: Path, shared_mock: ManagedProcess) -> None:
    port = free_port()
    (tmp_path / ".env").write_text(
        f"OPENAI_API_KEY=sk-from-dotenv\nOPENAI_BASE_URL={shared_mock.url}\n"
        f"LISTEN_ADDR=127.0.0.1:{port}\nMAX_BODY_BYTES=50\nTIMEOUT_SECS=\n"
    )
    process = ManagedProcess("gateway-dotenv", [sys.executable, "-m", "llm_gateway"], {}, tmp_path, port)
    try:
        process.wait_ready("/healthz")
        assert_openai_error(httpx.post(process.url + CHAT, json=chat_body()), 413, "request_too_large")
    finally:
        process.stop()
