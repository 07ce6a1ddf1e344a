"""Published policies: the contract between the operator (writer) and the gateways (readers) for
TenantPolicy resources, beside the live quota map (:mod:`llm_gateway.core.quota_map`).

Redis layout:

- ``policy_map`` (hash): field = ``<namespace>/<name>`` of a TenantPolicy, value = a JSON object
  ``{"v": 1, "source": "<Cedar text>"}`` with an optional ``description``. The operator publishes a
  policy only once it validates against the schema.
- A change bumps ``quota_map:rev``, the live map's revision, in the same ``MULTI`` (on a Redis
  Cluster, after the write), so policies reach every replica as quota changes do: within 2 s.

Compatibility follows the live map's rules, and its version: new optional fields keep ``v``; a
reader skips (and logs) a value with a ``v`` it does not know.
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.core.policy.documents import PolicyDocument
from llm_gateway.core.quota_map import SCHEMA_VERSION, decode_versioned

__all__ = ["POLICY_MAP_KEY", "decode_policy", "encode_policy"]

POLICY_MAP_KEY = "policy_map"


def encode_policy(document: PolicyDocument) -> bytes:
    """The hash value a writer stores for ``document`` (its field is ``document.source``)."""
    data: dict[str, Any] = {"v": SCHEMA_VERSION, "source": document.text}
    if document.description:
        data["description"] = document.description
    return orjson.dumps(data)


def decode_policy(field: str, raw: bytes | str) -> PolicyDocument:
    """The document stored under ``field``; raises ``ValueError`` naming the problem."""
    data = decode_versioned(raw)
    source, description = data.get("source"), data.get("description", "")
    if not isinstance(source, str) or not isinstance(description, str):
        raise ValueError("'source' and 'description' must be strings")
    return PolicyDocument(field, source, description)
