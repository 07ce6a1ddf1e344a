from __future__ import annotations

import pytest

from llm_gateway.core.client_ip import client_ip, parse_networks

TRUSTED = parse_networks("10.0.0.0/8, 127.0.0.1, ::1")


def test_forwarded_for_is_ignored_from_untrusted_peers() -> None:
    assert client_ip("203.0.113.5", "198.51.100.1", TRUSTED) == "203.0.113.5"
    assert client_ip("203.0.113.5", "198.51.100.1", []) == "203.0.113.5"


def test_rightmost_untrusted_hop_is_the_client() -> None:
    # The client forged the first entry; our proxies appended the rest.
    assert client_ip("10.0.0.2", "1.1.1.1, 198.51.100.7, 10.0.0.9", TRUSTED) == "198.51.100.7"


def test_all_trusted_chain_falls_back_to_the_peer() -> None:
    assert client_ip("127.0.0.1", "10.1.1.1", TRUSTED) == "127.0.0.1"


def test_missing_peer() -> None:
    assert client_ip(None, None, TRUSTED) == "unknown"


def test_parse_networks_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not an IP"):
        parse_networks("10.0.0.0/8, proxy.local")
