"""PII never crosses the gateway: requests, responses and streams, through real processes.

The mock's ``reply=`` directive (base64 in the model name, which the gateway forwards untouched)
makes the upstream itself say the PII, so the response side is tested on its own; ``chunk-chars``
cuts the reply into pieces that split the entities across SSE events.
"""

from __future__ import annotations

import base64

import httpx
import orjson

from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, chat_body, metric_value, sse_data, streamed_text
from tests.support import ManagedProcess

EMAIL = "jane.doe@example.com"
CARD = "4242 4242 4242 4242"
TEXT = f"Write to {EMAIL} and charge {CARD} today please"
REDACTED = "Write to j***e@example.com and charge CC_MASKED_LAST4_4242 today please"


def replying(text: str, extra: str = "") -> str:
    return "mock:reply=" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=") + extra


def upstream_body(mock: ManagedProcess) -> str:
    return str(httpx.get(mock.url + "/_mock/last-request").json()["body"])


def test_upstream_never_receives_the_pii_the_client_sent(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    body = chat_body(TEXT, model="mock:echo")
    body["messages"].append({"role": "user", "content": [{"type": "text", "text": f"also {EMAIL}"}]})
    assert httpx.post(gateway.url + CHAT, json=body).status_code == 200
    sent = upstream_body(mock)
    assert EMAIL not in sent and CARD not in sent
    messages = orjson.loads(sent)["messages"]
    assert messages[0]["content"] == REDACTED
    assert messages[1]["content"][0]["text"] == "also j***e@example.com"


def test_non_stream_reply_is_redacted(gateway: ManagedProcess, mock: ManagedProcess) -> None:
    response = httpx.post(gateway.url + CHAT, json=chat_body("hi", model=replying(TEXT)))
    assert response.json()["choices"][0]["message"]["content"] == REDACTED
    assert EMAIL not in response.text and CARD not in response.text


def test_streamed_pii_split_across_events_never_reaches_the_client(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    for size in (1, 3, 7):
        body = chat_body("hi", model=replying(TEXT, f",chunk-chars={size}"), stream=True)
        direct = sse_data(httpx.post(mock.url + CHAT, json=body).content)
        assert streamed_text(direct) == TEXT and len(direct) > 10  # the upstream does split it
        response = httpx.post(gateway.url + CHAT, json=body, timeout=10)
        payloads = sse_data(response.content)
        assert payloads[-1] == "[DONE]"
        assert streamed_text(payloads) == REDACTED
        assert EMAIL not in response.text and "4242 4242" not in response.text
        assert len(payloads) == len(direct)  # event structure kept: only text moved between events


def test_plain_words_are_released_in_the_event_they_arrive_in(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    body = chat_body("no personal data in this sentence at all", model="mock:echo", stream=True)
    direct = per_event_text(httpx.post(mock.url + CHAT, json=body).content)
    through = per_event_text(httpx.post(gateway.url + CHAT, json=body).content)
    # [role, 8 words, finish, DONE]: every word followed by a space leaves in its own event; only the
    # final word (which could still be the start of an email) may wait for the finish event.
    assert len(through) == len(direct) == 11
    assert through[:8] == direct[:8]
    assert (through[8] or "") + (through[9] or "") == (direct[8] or "") + (direct[9] or "") == "all"


def per_event_text(raw: bytes) -> list[str | None]:
    return [
        None if data == "[DONE]" else orjson.loads(data)["choices"][0]["delta"].get("content")
        for data in sse_data(raw)
    ]


def test_redactions_are_counted_by_entity_and_direction(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory()
    httpx.post(gateway.url + CHAT, json=chat_body(TEXT, model="mock:echo"))
    httpx.post(gateway.url + CHAT, json=chat_body("hi", model=replying(TEXT, ",chunk-chars=2"), stream=True))
    for direction in ("request", "response"):
        for entity in ("EMAIL", "CREDIT_CARD"):
            sample = f'redactions_total{{direction="{direction}",entity="{entity}"}}'
            assert metric_value(gateway.url, sample) == 1, sample


def test_entities_and_modes_are_configurable(gateway_factory: GatewayFactory, mock: ManagedProcess) -> None:
    only_cards = gateway_factory(REDACT_ENTITIES="CREDIT_CARD", REDACT_MODE="placeholder")
    reply = httpx.post(only_cards.url + CHAT, json=chat_body("hi", model=replying(TEXT))).json()
    assert (
        reply["choices"][0]["message"]["content"] == f"Write to {EMAIL} and charge [CREDIT_CARD] today please"
    )
    hashing = gateway_factory(REDACT_MODE="hash", REDACTION_HASH_KEY="k1")
    first = httpx.post(hashing.url + CHAT, json=chat_body("hi", model=replying(EMAIL))).json()
    second = httpx.post(hashing.url + CHAT, json=chat_body("hi", model=replying(EMAIL))).json()
    token = first["choices"][0]["message"]["content"]
    assert token.startswith("[EMAIL:") and token == second["choices"][0]["message"]["content"]


def test_redaction_off_forwards_everything(gateway_factory: GatewayFactory, mock: ManagedProcess) -> None:
    gateway = gateway_factory(REDACTION="off")
    response = httpx.post(gateway.url + CHAT, json=chat_body(TEXT, model="mock:echo"))
    assert response.json()["choices"][0]["message"]["content"] == TEXT
    assert EMAIL in upstream_body(mock)
