"""The OpenAPI description of the proxy endpoints, which are plain ASGI apps FastAPI does not see.

For each API it describes what the gateway itself enforces (a JSON object with a ``model`` string,
the API's input field as its :class:`~llm_gateway.core.apis.InputRule` says, and an optional
boolean ``stream`` where the API streams; everything else passes through to the upstream, which has
the last word) and every status the gateway can answer, each error in the API's shape. The schema
is merged into FastAPI's own document once, at first request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from llm_gateway.core.api_request import MAX_MODEL_LENGTH
from llm_gateway.core.apis import WireAPI

__all__ = ["add_proxy_paths"]


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicErrorResponse(BaseModel):
    """Errors of the Anthropic-family endpoints, in Anthropic's shape."""

    type: str
    error: AnthropicErrorDetail


class ErrorResponse(BaseModel):
    """Every error the gateway answers (and every upstream error it relays, as the upstream wrote it)."""

    error: ErrorDetail


_ERRORS = {
    "400": "Invalid JSON, a missing or malformed `model`, input or `stream`, nesting beyond "
    "`MAX_JSON_DEPTH`, an unusable API key; or the upstream's own 400",
    "401": "No API key where one is required, or a key not in the key map (`AUTH_MODE=keys`)",
    "403": "The tenant is suspended, or the model is not in its `allowedModels`",
    "404": "The model does not exist or the tenant may not use it (`model_not_found`)",
    "408": "The request did not arrive within `REQUEST_READ_TIMEOUT_SECS`",
    "413": "Body larger than `MAX_BODY_BYTES`, as sent or once decoded",
    "415": "Content-Type is not application/json, or a Content-Encoding other than gzip or deflate",
    "429": "Quota (`insufficient_quota`) or rate limit (`requests`) exceeded; see `Retry-After`",
    "431": "Request line and headers larger than `MAX_HEADER_BYTES`",
    "502": "The upstream failed (connection error, reset, or a 5xx it answered)",
    "4XX": "Another 4xx the upstream answered, relayed as it wrote it",
    "503": "Load shed beyond `MAX_CONCURRENCY` or `MAX_BUFFERED_BODY_BYTES`, or the quota backend down "
    "with `QUOTA_FAILURE_MODE=closed`",
    "504": "No first byte from the upstream within `TIMEOUT_SECS` (or `NON_STREAM_TIMEOUT_SECS`)",
}


def _error_responses(statuses: list[str], schema: str = "ErrorResponse") -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return {status: {"description": _ERRORS[status], "content": error} for status in statuses}


def _auth_parameters() -> list[dict[str, Any]]:
    return [
        {
            "name": "X-Api-Key",
            "in": "header",
            "required": False,
            "description": "The tenant's API key (also accepted as `Authorization: Bearer`).",
            "schema": {"type": "string"},
        }
    ]


def add_proxy_paths(
    document: dict[str, Any], apis: Iterable[WireAPI], models_route: str, model_route: str
) -> dict[str, Any]:
    """``document`` (FastAPI's OpenAPI dict) with the proxy endpoints and their schemas added."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorResponse, AnthropicErrorResponse):
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schemas[model.__name__].pop("$defs", {}))
    paths = document.setdefault("paths", {})
    for api in apis:
        paths[api.route] = _api_path(api)
    document["paths"][models_route] = {
        "get": {
            "tags": ["proxy"],
            "summary": "List the upstream's models (those the tenant may use)",
            "operationId": "listModels",
            "parameters": _auth_parameters(),
            "responses": {
                "200": {
                    "description": "The upstream's model list, filtered to the tenant's allowed models",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_error_responses(["401", "403", "408", "431", "4XX", "502", "504"]),
            },
        }
    }
    document["paths"][model_route] = {
        "get": {
            "tags": ["proxy"],
            "summary": "Retrieve one of the upstream's models",
            "operationId": "retrieveModel",
            "parameters": [
                *_auth_parameters(),
                {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "The upstream's model",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_error_responses(["401", "403", "404", "408", "431", "4XX", "502", "504"]),
            },
        }
    }
    return document


def _api_path(api: WireAPI) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "model": {"type": "string", "minLength": 1, "maxLength": MAX_MODEL_LENGTH},
        api.input.field: dict(api.input.schema),
    }
    if api.streams:
        properties["stream"] = {"type": ["boolean", "null"], "description": "Answer as server-sent events."}
    request = {
        "type": "object",
        "required": ["model", api.input.field] if api.input.required else ["model"],
        "properties": properties,
        "additionalProperties": True,
        "description": "Fields not listed are forwarded as they are, for the upstream to judge.",
    }
    answers = {"application/json": {"schema": {"type": "object"}}}
    if api.streams:
        answers["text/event-stream"] = {"schema": {"type": "string"}}
    return {
        "post": {
            "tags": ["proxy"],
            "summary": f"{api.summary} (proxied, metered, redacted)",
            "operationId": api.operation_id,
            "parameters": _auth_parameters(),
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                "200": {
                    "description": "The upstream's answer, redacted"
                    + ("; a stream when `stream` is true" if api.streams else ""),
                    "content": answers,
                },
                **_error_responses(
                    ["400", "401", "403", "408", "413", "415", "429", "431", "4XX", "502", "503", "504"],
                    "AnthropicErrorResponse" if api.family == "anthropic" else "ErrorResponse",
                ),
            },
        }
    }
