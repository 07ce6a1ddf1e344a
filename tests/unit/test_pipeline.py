"""The pipeline stays one piece for every API: no API's name or field appears in its modules.

What differs between APIs lives in their descriptions (``llm_gateway.core.apis``); the modules
below run the same steps for all of them. A word here means an API leaked into the pipeline.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import llm_gateway

PACKAGE = Path(llm_gateway.__file__).parent
PIPELINE = [
    "api/endpoint.py",
    "api/relay.py",
    "api/admission.py",
    "api/request_body.py",
    "api/disconnect.py",
    "api/asgi_io.py",
]
#: API names, routes and fields (OpenAI Chat Completions, Completions, Embeddings, Responses;
#: Anthropic Messages).
API_WORDS = re.compile(
    r"chat|completions?\b|embeddings?|choices|prompt|stream_options|\"messages\"|\[DONE\]|delta|"
    r"openai|anthropic|/v1/|output_text|content_block|input_tokens|output_tokens|prompt_tokens",
    re.IGNORECASE,
)


@pytest.mark.parametrize("module", PIPELINE)
def test_the_pipeline_names_no_api(module: str) -> None:
    text = (PACKAGE / module).read_text()
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if API_WORDS.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_word_list_would_catch_an_api_in_the_pipeline() -> None:
    assert API_WORDS.search('await upstream.open("POST", "/chat/completions")')
    assert API_WORDS.search('payload.get("choices")')
