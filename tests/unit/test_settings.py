from __future__ import annotations

import pytest

from llm_gateway.settings import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)  # no .env


def test_defaults_match_the_replaced_gateway() -> None:
    settings = load_settings(openai_api_key="sk-x")
    assert settings.listen == ("0.0.0.0", 8080)
    assert settings.openai_base_url == "https://api.openai.com"
    assert (settings.rps, settings.burst) == (5, 10)
    assert (settings.default_quota, settings.quota_window_secs) == (120, 60)
    assert settings.redis_url is None
    assert settings.tenant_quotas == {}
    assert settings.otel_service_name == "secure-llm-gateway"
    assert settings.max_body_bytes == 52_428_800  # 50 MiB: a vision request fits (issue 16)


def test_reads_the_old_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("TENANT_QUOTAS", "tenantA=5,tenantB=8")
    monkeypatch.setenv("TIMEOUT_SECS", "2")
    monkeypatch.setenv("MAX_CONCURRENCY", "1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:4000/")
    settings = load_settings()
    assert settings.tenant_quotas == {"tenantA": 5, "tenantB": 8}
    assert settings.timeout_secs == 2
    assert settings.max_concurrency == 1
    assert settings.openai_base_url == "http://127.0.0.1:4000"


def test_errors_name_every_bad_variable_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPS", "0")
    monkeypatch.setenv("QUOTA_WINDOW_SECS", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        "OPENAI_API_KEY",
        "QUOTA_WINDOW_SECS",
        "RPS",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"auth_mode": "keys", "redis_url": "redis://r"}, "KEY_HASH_SECRET: required when AUTH_MODE=keys"),
        ({"auth_mode": "keys", "key_hash_secret": "s"}, "REDIS_URL: required when AUTH_MODE=keys"),
        ({"privacy_mode": "strict"}, "TENANT_HASH_KEY: required when PRIVACY_MODE=strict"),
        (
            {"privacy_mode": "strict", "tenant_hash_key": "k", "tenant_label": "name"},
            "TENANT_LABEL=name: not allowed when PRIVACY_MODE=strict",
        ),
        ({"max_json_depth": 255}, "MAX_JSON_DEPTH: "),
        ({"redis_cluster": True}, "REDIS_CLUSTER: needs REDIS_URL"),
        (
            {"redis_cluster": True, "redis_url": "unix:///run/redis.sock"},
            "REDIS_URL: a Redis Cluster is reached over redis:// or rediss:// and has only database 0",
        ),
        (
            {"redis_cluster": True, "redis_url": "redis://:s3cr3t@node:6379/2"},
            "REDIS_URL: a Redis Cluster is reached over redis:// or rediss:// and has only database 0",
        ),
    ],
)
def test_security_modes_refuse_to_start_without_what_they_need(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(openai_api_key="sk-x", **overrides)
    assert message in str(caught.value)


def test_a_cluster_url_names_any_node_over_tcp() -> None:
    settings = load_settings(openai_api_key="sk-x", redis_cluster=True, redis_url="rediss://:pw@node:6380/0")
    assert settings.redis_cluster is True
    assert load_settings(openai_api_key="sk-x").redis_cluster is False


def test_secrets_are_never_echoed_in_config_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(openai_api_key="sk-x", key_hash_secret=["not", "a", "string-s3cr3t"])
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPSTREAM_MAX_ATTEMPTS", "0"),
        ("UPSTREAM_MAX_ATTEMPTS", "2000"),
        ("UPSTREAM_RETRY_STATUSES", "200"),
        ("UPSTREAM_RETRY_STATUSES", "5xx"),
        ("UPSTREAM_RETRY_DEADLINE_SECS", "inf"),
        ("UPSTREAM_RETRY_DEADLINE_SECS", "nan"),
        ("UPSTREAM_RETRY_BUDGET_RATIO", "inf"),
        ("UPSTREAM_RETRY_BACKOFF_MS", "-1"),
        ("CIRCUIT_BREAKER_COOLDOWN_SECS", "inf"),
        ("CIRCUIT_BREAKER_WINDOW_SECS", "1e-320"),
        ("CIRCUIT_BREAKER_FAILURE_RATIO", "0"),
        ("CIRCUIT_BREAKER_MIN_TENANTS", "0"),
        ("CIRCUIT_BREAKER_STATUSES", "429,abc"),
        ("CIRCUIT_BREAKER_PROBES", "0"),
    ],
)
def test_resilience_settings_out_of_range_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(openai_api_key="sk-x")
    assert str(caught.value).startswith(f"{name}: "), caught.value


def test_a_breakers_longest_cooldown_is_at_least_its_cooldown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            openai_api_key="sk-x", circuit_breaker_cooldown_secs=60, circuit_breaker_max_cooldown_secs=30
        )
    assert "CIRCUIT_BREAKER_MAX_COOLDOWN_SECS: must be at least CIRCUIT_BREAKER_COOLDOWN_SECS" in str(
        caught.value
    )


def test_resilience_settings_are_read_into_their_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_RETRY_STATUSES", "503, 429")
    monkeypatch.setenv("UPSTREAM_RETRY_BACKOFF_MS", "50")
    monkeypatch.setenv("CIRCUIT_BREAKER_MIN_TENANTS", "3")
    settings = load_settings(openai_api_key="sk-x")
    assert settings.retry_policy.statuses == frozenset({429, 503})
    assert settings.retry_policy.backoff == 0.05
    assert settings.breaker_policy.min_tenants == 3
    monkeypatch.delenv("UPSTREAM_RETRY_STATUSES")
    assert load_settings(openai_api_key="sk-x").retry_policy.statuses == frozenset(
        {429, 500, 502, 503, 504, 529}
    )
