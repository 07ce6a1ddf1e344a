"""The wire APIs the gateway serves, each a pure description (:class:`WireAPI`) in a module of its own."""

from llm_gateway.core.apis.anthropic_messages import COUNT_TOKENS, MESSAGES
from llm_gateway.core.apis.description import InputRule, StreamRedaction, WireAPI
from llm_gateway.core.apis.openai_chat import CHAT_COMPLETIONS
from llm_gateway.core.apis.openai_completions import COMPLETIONS
from llm_gateway.core.apis.openai_embeddings import EMBEDDINGS
from llm_gateway.core.apis.openai_responses import RESPONSES

__all__ = [
    "APIS",
    "CHAT_COMPLETIONS",
    "COMPLETIONS",
    "COUNT_TOKENS",
    "EMBEDDINGS",
    "MESSAGES",
    "RESPONSES",
    "InputRule",
    "StreamRedaction",
    "WireAPI",
]

#: Every API served, in the order the OpenAPI document lists them.
APIS = (CHAT_COMPLETIONS, RESPONSES, COMPLETIONS, EMBEDDINGS, MESSAGES, COUNT_TOKENS)
