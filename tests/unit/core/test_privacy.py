from __future__ import annotations

import secrets

import pytest

from llm_gateway.core.privacy import chosen_name, storage_id, tenant_hash

CREDENTIALS = [
    "sk-proj-" + "Ab3dE" * 10,  # OpenAI project key
    "sk-" + "a1B2" * 12,  # OpenAI legacy key
    "sk-svcacct-" + "Zz9" * 15,
    "sk-ant-api03-" + "x7Y" * 30,  # Anthropic
    "sk-test",  # a short one: still a credential prefix
    "SK-LIVE-1",
    "pk_live_51H" + "q" * 20,
    "3f2a9c1e0b7d4c5a8e6f1a2b3c4d5e6f",  # 32 hex: a bearer token
    "0f3c9a2e-7b1d-4e8a-9c55-1a2b3c4d5e6f",  # a UUID used as a key
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",  # a JWT
    "a" * 33,  # too long for a chosen name
    "tenant with spaces",
    "10.0.0.7:/v1/chat/completions",  # an anonymous client's rate-limit key
    "3f2a9c1e0b7d",  # a pseudonym's shape
    "Swy6qOjwwYKKgah-ownxZg",  # secrets.token_urlsafe(16): no long run, but random (the hostile run's)
    "glpat-x7Kq2Lm9Np4Rt6Vw8Yz1",  # a GitLab token
]
NAMES = [
    "demo",
    "tenantA",
    "tenantB",
    "team-platform.prod",
    "acme_eu-west-1",
    "narrow",
    "r2d2",
    "A" * 15,
    "mlPlatformV2",
    "dataScienceTeam",
    "Q3Forecast",
    "customer_42",
]


@pytest.mark.parametrize("value", NAMES)
def test_standard_keeps_chosen_names_as_they_are(value: str) -> None:
    assert chosen_name(value)
    assert storage_id("standard", None)(value) == value


@pytest.mark.parametrize("value", CREDENTIALS)
def test_standard_never_writes_a_credential_in_clear(value: str) -> None:
    assert not chosen_name(value)
    stored = storage_id("standard", None)(value)
    assert stored == tenant_hash(value) and value not in stored
    assert storage_id("standard", b"k")(value) == tenant_hash(value, b"k")  # keyed when a key is set


def test_strict_stores_the_keyed_pseudonym_metrics_show() -> None:
    pseudonym = storage_id("strict", b"k")
    assert pseudonym("tenantA") == tenant_hash("tenantA", b"k")
    assert pseudonym("tenantA") != tenant_hash("tenantA", b"other") != tenant_hash("tenantA")
    assert len(pseudonym("tenantA")) == 12


def test_random_keys_without_a_long_run_are_not_names() -> None:
    """The hostile run's finding: 23.6 % of `token_urlsafe(16)` keys passed the first rule."""
    keys = [secrets.token_urlsafe(16) for _ in range(5000)]
    assert sum(chosen_name(key) for key in keys) <= 25  # about 0.07 % expected: at most 0.5 %
