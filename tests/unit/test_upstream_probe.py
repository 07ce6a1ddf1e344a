"""Which upstream answers to ``GET /v1/models`` make a replica ready."""

from __future__ import annotations

import pytest

from llm_gateway.adapters.upstream_probe import judge


@pytest.mark.parametrize(
    ("status", "ready", "detail"),
    [
        (200, True, "ok"),
        (404, True, "ok"),  # an OpenAI-compatible server without a model list is still the right address
        (400, True, "ok"),
        (429, True, "ok"),  # rate limited: reachable, and the key was accepted
        (401, False, "upstream refuses the gateway's key (401)"),
        (403, False, "upstream refuses the gateway's key (403)"),
        (500, False, "upstream answers 500"),
        (503, False, "upstream answers 503"),
    ],
)
def test_judge(status: int, ready: bool, detail: str) -> None:
    assert judge(status) == (ready, detail)
