from __future__ import annotations

import pytest
from multidict import CIMultiDict

from llm_gateway.core.headers import caller_request_id, forwarded_headers, passed_response_headers


def test_forwards_only_allow_listed_headers() -> None:
    headers = [
        (b"authorization", b"Bearer client"),
        (b"x-api-key", b"tenant"),
        (b"cookie", b"a=b"),
        (b"connection", b"keep-alive"),
        (b"transfer-encoding", b"chunked"),
        (b"host", b"evil.example"),
        (b"openai-organization", b"org-x"),
        (b"x-forwarded-for", b"1.2.3.4"),
        (b"accept", b"text/event-stream"),
        (b"openai-beta", b"assistants=v2"),
        (b"x-request-id", b"req-1"),
    ]
    # The caller's request id goes upstream too, as the request's own id (see the relay).
    assert forwarded_headers(headers) == {"accept": "text/event-stream", "openai-beta": "assistants=v2"}


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (b"req-1", "req-1"),
        (b"0f3c9a2e-7b1d-4e8a-9c55-1a2b3c4d5e6f", "0f3c9a2e-7b1d-4e8a-9c55-1a2b3c4d5e6f"),
        (b"trace:abc/def+g==", "trace:abc/def+g=="),
        (b"a" * 128, "a" * 128),
        (b"a" * 129, None),  # bounded
        (b"", None),
        (b"-starts-with-dash", None),
        (b"has space", None),
        (b"line\r\nx-injected: 1", None),
        ("zoë".encode(), None),
        (b'"quoted"', None),
    ],
)
def test_a_caller_request_id_is_kept_only_when_it_is_safe(value: bytes, kept: str | None) -> None:
    assert caller_request_id(value) == kept


def test_only_the_response_headers_a_client_needs_pass_and_the_upstream_id_is_renamed() -> None:
    upstream = CIMultiDict(
        {
            "Retry-After": "7",
            "retry-after-ms": "7000",
            "x-should-retry": "true",
            "openai-processing-ms": "321",
            "openai-version": "2020-10-01",
            "openai-organization": "acme-org",
            "openai-project": "proj_1",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-limit-tokens": "2000000",
            "set-cookie": "__cf_bm=x",
            "X-Request-Id": "req_abc123",
        }
    )
    passed, upstream_id = passed_response_headers(upstream)
    assert dict(passed) == {
        b"retry-after": b"7",
        b"retry-after-ms": b"7000",
        b"x-should-retry": b"true",
        b"openai-processing-ms": b"321",
        b"openai-version": b"2020-10-01",
        b"x-upstream-request-id": b"req_abc123",
    }
    assert upstream_id == "req_abc123"
    assert passed_response_headers(CIMultiDict({"x-request-id": "bad id\r\n"})) == ([], None)
