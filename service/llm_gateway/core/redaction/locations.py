"""Where model text lives in an API's payloads: a description, as data (pure).

One :class:`TextLocations` per API (in :mod:`llm_gateway.core.apis`) says where the text a model
reads or writes sits in requests, whole responses and stream chunks; the walkers in
:mod:`~llm_gateway.core.redaction.payloads` redact exactly those places and nothing else. A path is
a tuple of keys, ``"*"`` standing for every element of a list. A *text* place holds a string, or a
list of content parts whose ``text`` is redacted (``{"type": "text", "text": ...}``; images and
audio parts pass untouched). A *JSON* place holds JSON text (tool-call arguments), redacted so that
it still parses.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Path", "StreamChannel", "TextLocations"]

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StreamChannel:
    """One stream of text fragments inside a streamed choice.

    ``path`` is relative to the choice; a ``"*"`` in it is a list whose elements carry an ``index``
    (tool calls), each its own channel. ``logprobs`` is where the log probabilities of this text
    are, relative to the choice, if the API has them. ``json`` marks JSON text.
    """

    path: Path
    logprobs: Path | None = None
    json: bool = False


@dataclass(frozen=True, slots=True)
class TextLocations:
    """Where model text is, for one API.

    ``request_text``/``request_json``: in a request body. ``response_text``/``response_json``: in a
    whole response, relative to each element of the list ``outputs`` names (OpenAI's ``choices``);
    ``response_logprobs`` pairs the log
    probabilities of a text place with that place. ``stream``: the channels of a streamed choice;
    ``stream_choice``: the objects a streamed choice always has (``delta``), which a chunk the
    gateway adds for held text carries too.
    """

    request_text: tuple[Path, ...]
    request_json: tuple[Path, ...]
    outputs: str
    response_text: tuple[Path, ...]
    response_json: tuple[Path, ...]
    response_logprobs: tuple[tuple[Path, Path], ...]
    stream: tuple[StreamChannel, ...]
    stream_choice: tuple[str, ...]
