"""Test namespaces never collide: parametrized cases share a long name prefix, and one collision fails CI."""

from __future__ import annotations

import re

from tests.k8s.conftest import namespace_name

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_cases_sharing_a_prefix_get_distinct_valid_names() -> None:
    cases = [
        f"test_bad_fixtures_are_refused_with_the_servers_message[case {n}: Ünïcode/quote']"
        for n in range(500)
    ]
    names = [namespace_name(case) for case in cases + cases]  # the same test twice (a rerun) too
    assert len(set(names)) == len(names)
    assert all(DNS_LABEL.match(name) and len(name) <= 63 for name in names), names[:3]
