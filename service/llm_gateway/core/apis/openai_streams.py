"""What OpenAI's streamed APIs (chat completions, completions) share: asking for usage, ``[DONE]``.

A stream reports usage only when the request asks (``stream_options.include_usage``). The gateway
asks on the client's behalf so that streamed traffic is metered too; the usage chunk is then held
back from a client that had not asked (see :class:`~llm_gateway.core.usage.StreamUsage`).
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.sse import DONE, SSEEvent

__all__ = ["ask_for_stream_usage", "is_done"]


def ask_for_stream_usage(payload: dict[str, Any]) -> bool:
    """Make a streaming request ask for usage; True when the client had asked for it itself.

    Sets ``stream_options.include_usage`` in ``payload`` (in place) when it was not already true.
    A ``stream_options`` that is not an object is left alone for the upstream to reject, and
    counts as not asked.
    """
    options = payload.get("stream_options")
    if options is None:
        payload["stream_options"] = {"include_usage": True}
        return False
    if not isinstance(options, dict):
        return False
    if options.get("include_usage") is True:
        return True
    options["include_usage"] = True
    return False


def is_done(event: SSEEvent) -> bool:
    """``data: [DONE]``: the SDKs stop reading there."""
    return event.data == DONE
