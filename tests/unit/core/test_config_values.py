from __future__ import annotations

import pytest

from llm_gateway.core.config_values import parse_listen_addr, parse_tenant_quotas


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tenantA=5,tenantB=8", {"tenantA": 5, "tenantB": 8}),
        (" tenantA = 5 , tenantB=8, ", {"tenantA": 5, "tenantB": 8}),
        ("", {}),
        ("blocked=0", {"blocked": 0}),
        ("sk-abc.def_1=120", {"sk-abc.def_1": 120}),
    ],
)
def test_parses_tenant_quotas(text: str, expected: dict[str, int]) -> None:
    assert parse_tenant_quotas(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenantA", "tenant=limit"),
        ("=5", "tenant=limit"),
        ("tenantA=", "non-negative integer"),
        ("tenantA=-1", "non-negative integer"),
        ("tenantA=1.5", "non-negative integer"),
        ("tenantA=5,tenantA=6", "listed twice"),
        ("ten ant=5", "tenant=limit"),
    ],
)
def test_rejects_malformed_tenant_quotas_naming_the_pair(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tenant_quotas(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("[::]:8080", ("::", 8080)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parses_listen_addr(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_addr(text) == expected


@pytest.mark.parametrize("text", ["8080", ":8080", "host:", "host:http", "host:0", "host:65536"])
def test_rejects_bad_listen_addr(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen_addr(text)
