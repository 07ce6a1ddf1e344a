from __future__ import annotations

from llm_gateway.core.headers import forwarded_headers


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
    assert forwarded_headers(headers) == {
        "accept": "text/event-stream",
        "openai-beta": "assistants=v2",
        "x-request-id": "req-1",
    }
