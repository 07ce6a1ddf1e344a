"""An upstream behind TLS: verified against the machine's trust (``SSL_CERT_FILE``), refused otherwise."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import trustme

from openaimock.completions import DEFAULT_REPLY
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body
from tests.support import ManagedProcess, start_mock


@pytest.fixture(scope="module")
def tls_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ManagedProcess, Path]]:
    """The mock serving HTTPS with a certificate for 127.0.0.1 from a CA of its own, and that CA's PEM."""
    workdir = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    ca_pem = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    server_pem = workdir / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    mock = start_mock(workdir, verify=trusting, TLS_CERT_FILE=str(server_pem), TLS_KEY_FILE=str(server_pem))
    yield mock, ca_pem
    mock.stop()


def test_an_https_upstream_the_machine_trusts_serves_completions_and_streams(
    tls_upstream: tuple[ManagedProcess, Path], gateway_factory: GatewayFactory
) -> None:
    mock, ca_pem = tls_upstream
    gateway = gateway_factory(upstream=mock.url + "/v1", SSL_CERT_FILE=str(ca_pem))
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-tls", max_retries=0) as client:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert completion.choices[0].message.content == DEFAULT_REPLY
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        assert (
            "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
            == DEFAULT_REPLY
        )


def test_an_https_upstream_with_an_unknown_certificate_authority_is_unavailable(
    tls_upstream: tuple[ManagedProcess, Path], gateway_factory: GatewayFactory
) -> None:
    mock, _ = tls_upstream
    gateway = gateway_factory(upstream=mock.url + "/v1")
    response = httpx.post(gateway.url + CHAT, json=chat_body())
    assert_openai_error(response, 502, "upstream_unavailable")
