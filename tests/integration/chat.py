"""Helpers for talking to the gateway's chat endpoint in tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

CHAT = "/v1/chat/completions"


def chat_body(
    content: str = "ping", *, model: str = "gpt-4o-mini", stream: bool = False, **extra: Any
) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
        **extra,
    }


def sse_data(raw: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order (comments and blank lines dropped)."""
    events = raw.decode().replace("\r\n", "\n").split("\n\n")
    payloads = []
    for event in events:
        data = [line[5:].removeprefix(" ") for line in event.split("\n") if line.startswith("data:")]
        if data:
            payloads.append("\n".join(data))
    return payloads


def streamed_text(payloads: list[str]) -> str:
    """Concatenated ``delta.content`` of chat-completion chunks."""
    text = []
    for payload in payloads:
        if payload == "[DONE]":
            continue
        for choice in orjson.loads(payload).get("choices", []):
            text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text)


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Check status and the ``{"error": {"message", "type", "code"}}`` shape; return the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return dict(error)


def metric_value(base_url: str, sample: str) -> float:
    """The value of one sample line (``name{labels}``) of the gateway's ``/metrics``; 0 if absent."""
    for line in httpx.get(base_url + "/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def anthropic_routing(tmp_path: Path, url: str) -> str:
    """A routing file that sends ``claude-*`` and ``mock:*`` models to an Anthropic upstream at
    ``url`` (its key from ``ANTHROPIC_API_KEY``); its path."""
    path = tmp_path / "routing.yaml"
    upstream = {"name": "claude", "kind": "anthropic", "base_url": url, "api_key_env": "ANTHROPIC_API_KEY"}
    routes = [{"model": "claude-*", "upstream": "claude"}, {"model": "mock:*", "upstream": "claude"}]
    path.write_text(yaml.safe_dump({"upstreams": [upstream], "routes": routes}))
    return str(path)
