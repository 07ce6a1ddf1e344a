"""The gateway's Cedar schema (``gateway.cedarschema`` beside this module) and the names it declares.

The schema is the contract between policy authors and the gateway: what a principal, a resource
and a request's context carry (see :mod:`llm_gateway.core.policy.facts`). It is read once, here.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Final

import cedarpy

__all__ = ["ACTIONS", "CONTEXT_ATTRIBUTES", "INVOKE", "NOT_INVOKING", "SCHEMA_TEXT", "schema"]

#: The schema in Cedar's human-readable syntax.
SCHEMA_TEXT: Final = resources.files(__package__).joinpath("gateway.cedarschema").read_text("utf-8")

#: The action group every model call is in (``action in Action::"invoke"``).
INVOKE: Final = "invoke"
#: Every action a request can be (an API operation); those that send text upstream are in :data:`INVOKE`.
ACTIONS: Final = ("chat", "responses", "completions", "messages", "embeddings", "count_tokens", "models")
#: The actions outside :data:`INVOKE`.
NOT_INVOKING: Final = frozenset({"models"})
#: The attributes of ``RequestContext``, in the schema's order.
CONTEXT_ATTRIBUTES: Final = (
    "stream",
    "max_tokens",
    "has_tools",
    "has_images",
    "pii",
    "bytes",
    "hour",
    "client_network",
)


@functools.cache
def schema() -> cedarpy.Schema:
    """The parsed schema (parsed on first use, then kept)."""
    return cedarpy.Schema.from_str(SCHEMA_TEXT)
