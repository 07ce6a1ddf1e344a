"""schemathesis fuzzes the HTTP API from the gateway's own OpenAPI document, against real processes.

Positive and negative cases (wrong types, missing fields, odd headers) for every documented operation:
the gateway must never fail by itself (no 500), every status must be documented, and every error
must be in the OpenAI shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from tests.support import ManagedProcess, start_gateway


@pytest.fixture(scope="module")
def api_schema(workdir: Path, shared_mock: ManagedProcess) -> Iterator[Any]:
    gateway = start_gateway(workdir, shared_mock.url, MAX_BODY_BYTES="65536")
    yield schemathesis.openapi.from_url(gateway.url + "/openapi.json")
    gateway.stop()


@schemathesis.check
def no_gateway_failure(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """No 500 (an unhandled error in the gateway); every 4xx/5xx an OpenAI-style error."""
    if response.status_code == 500:
        raise Failure(operation=case.operation.label, title="Gateway error", message=response.text[:300])
    if response.status_code >= 400 and case.path != "/readyz":
        error = response.json().get("error")
        if not isinstance(error, dict) or not {"message", "type", "code"} <= set(error):
            raise Failure(
                operation=case.operation.label, title="Not an OpenAI error", message=response.text[:300]
            )
    return None


# schemathesis' own pytest integration (`from_fixture`) does not run under pytest 9 yet; its
# strategies, driven by hypothesis here, are the same generator.
# Negative cases need something to break: only the API endpoints' bodies and headers offer it.
@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        ("POST", "/v1/chat/completions", GenerationMode.POSITIVE),
        ("POST", "/v1/chat/completions", GenerationMode.NEGATIVE),
        ("POST", "/v1/responses", GenerationMode.POSITIVE),
        ("POST", "/v1/responses", GenerationMode.NEGATIVE),
        ("POST", "/v1/completions", GenerationMode.POSITIVE),
        ("POST", "/v1/completions", GenerationMode.NEGATIVE),
        ("POST", "/v1/embeddings", GenerationMode.POSITIVE),
        ("POST", "/v1/embeddings", GenerationMode.NEGATIVE),
        ("GET", "/v1/models", GenerationMode.POSITIVE),
        ("GET", "/healthz", GenerationMode.POSITIVE),
        ("GET", "/readyz", GenerationMode.POSITIVE),
    ],
)
def test_the_api_never_fails_by_itself(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    checks = [no_gateway_failure, status_code_conformance, content_type_conformance]
    seen: set[int] = set()

    @given(case=api_schema[path][method].as_strategy(generation_mode=mode))
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        seen.add(case.call_and_validate(checks=checks).status_code)

    run()
    # The fuzzer reached the interesting outcome: answers, or (for broken input) refusals.
    if mode is GenerationMode.POSITIVE:
        assert 200 in seen, seen
    else:
        assert any(400 <= status < 500 for status in seen), seen
