"""What the gateway itself needs from a request body, and nothing more, for any wire API.

The body is forwarded as the client sent it; the gateway checks only the fields it acts on
(``model`` a string, the API's input field as its :class:`~llm_gateway.core.apis.InputRule` says,
``stream`` a boolean when present and the API streams). Everything else is the upstream's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llm_gateway.core import json_codec
from llm_gateway.core.apis.description import WireAPI
from llm_gateway.core.json_bounds import elements_in, nested_deeper_than
from llm_gateway.errors import InvalidRequest

__all__ = ["MAX_MODEL_LENGTH", "APIRequest", "is_model_name", "parse_request"]

#: The longest model name accepted (fine-tuned names run to about 60 characters). Model names
#: become metric labels, span attributes and log fields, so they are bounded and printable.
MAX_MODEL_LENGTH = 256


def is_model_name(name: str) -> bool:
    """1 to ``MAX_MODEL_LENGTH`` printable characters: no control characters, no lone surrogates
    (which no exposition format or log line can encode)."""
    return 0 < len(name) <= MAX_MODEL_LENGTH and name.isprintable()


@dataclass(frozen=True, slots=True)
class APIRequest:
    """A validated request. ``payload`` is the parsed body, untouched; ``dumps``
    writes it back exactly (see :mod:`~llm_gateway.core.json_codec`); ``elements`` bounds its
    number of JSON elements (see :func:`~llm_gateway.core.json_bounds.elements_in`)."""

    model: str
    stream: bool
    payload: dict[str, Any]
    dumps: json_codec.Dumps
    elements: int


def parse_request(api: WireAPI, body: bytes, max_depth: int, max_elements: int) -> APIRequest:
    """Parse and check ``body`` for ``api``; raise :class:`InvalidRequest` naming the first problem found.

    A body nested more than ``max_depth`` levels, or with more than ``max_elements`` elements, is
    refused before it is parsed.
    """
    if nested_deeper_than(body, max_depth):
        raise InvalidRequest(
            f"request body is nested more than {max_depth} levels deep", code="json_too_deep"
        )
    elements = elements_in(body, max_elements)
    if elements > max_elements:
        raise InvalidRequest(
            f"request body has more than {max_elements} JSON elements (array items and object members)",
            code="json_too_many_elements",
        )
    try:
        payload, dumps = json_codec.loads(body)
    except ValueError:
        raise InvalidRequest("request body is not valid JSON", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    model = payload.get("model")
    if not isinstance(model, str) or not is_model_name(model):
        raise InvalidRequest(
            f"'model' is required: a string of 1 to {MAX_MODEL_LENGTH} printable characters",
            code="invalid_model",
        )
    rule = api.input
    if not rule.accepts(payload.get(rule.field)):
        raise InvalidRequest(rule.message(), code=f"invalid_{rule.field}")
    stream = payload.get("stream", False) if api.streams else False
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", code="invalid_stream")
    return APIRequest(model=model, stream=stream, payload=payload, dumps=dumps, elements=elements)
