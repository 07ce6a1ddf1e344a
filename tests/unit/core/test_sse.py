from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.sse import KEEPALIVE, SSEDecoder, encode_events, format_event

STREAM = (
    b'data: {"choices":[{"delta":{"content":"jane.do"}}]}\n\n'
    b": keep-alive\n\n"
    b"event: ping\ndata: a\ndata: b\n\n"
    b"data: [DONE]\n\n"
)
EVENTS = [
    b'data: {"choices":[{"delta":{"content":"jane.do"}}]}',
    b": keep-alive",
    b"event: ping\ndata: a\ndata: b",
    b"data: [DONE]",
]


def decode_in_pieces(data: bytes, cuts: list[int]) -> tuple[list[bytes], bytes]:
    decoder = SSEDecoder()
    events: list[bytes] = []
    start = 0
    for cut in [*cuts, len(data)]:
        events.extend(decoder.decode(data[start:cut]))
        start = cut
    return events, decoder.flush()


def test_decodes_whole_stream_in_one_chunk() -> None:
    assert decode_in_pieces(STREAM, []) == (EVENTS, b"")


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_decodes_the_same_events_wherever_the_stream_is_cut(cut: int) -> None:
    assert decode_in_pieces(STREAM, [cut]) == (EVENTS, b"")


def test_decodes_byte_by_byte() -> None:
    assert decode_in_pieces(STREAM, list(range(1, len(STREAM)))) == (EVENTS, b"")


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_normalises_crlf_and_cr_line_endings_even_when_split(newline: bytes) -> None:
    data = STREAM.replace(b"\n", newline)
    assert decode_in_pieces(data, []) == (EVENTS, b"")
    for cut in range(1, len(data)):
        assert decode_in_pieces(data, [cut]) == (EVENTS, b""), cut


def test_holds_a_partial_event_until_its_end() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b'data: {"a":') == []
    assert decoder.decode(b"1}\n") == []
    assert decoder.decode(b"\ndata: x") == [b'data: {"a":1}']
    assert decoder.flush() == b"data: x"


def test_flush_is_empty_after_a_clean_end_and_ignores_stray_newlines() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: a\n\n\n") == [b"data: a"]
    assert decoder.flush() == b""


def test_encode_round_trips_decoded_events() -> None:
    assert encode_events(EVENTS) == STREAM
    assert decode_in_pieces(encode_events(EVENTS), [7]) == (EVENTS, b"")


def test_format_event_and_keepalive_are_single_well_formed_events() -> None:
    assert decode_in_pieces(format_event(b'{"error":{}}'), []) == ([b'data: {"error":{}}'], b"")
    assert decode_in_pieces(KEEPALIVE, []) == ([b": keep-alive"], b"")


def _decode_in_pieces(data: bytes, cuts: list[int]) -> tuple[list[bytes], bytes]:
    decoder = SSEDecoder()
    events: list[bytes] = []
    start = 0
    for cut in sorted(cuts):
        events += decoder.decode(data[start:cut])
        start = cut
    events += decoder.decode(data[start:])
    return events, decoder.flush()


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), raw_cuts=st.lists(st.integers(0, 300), max_size=12))
def test_any_bytes_cut_anywhere_decode_like_one_piece(data: bytes, raw_cuts: list[int]) -> None:
    cuts = [cut for cut in raw_cuts if cut <= len(data)]
    assert _decode_in_pieces(data, cuts) == _decode_in_pieces(data, [])


EVENT_LINES = st.lists(
    st.text(
        st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), min_size=1, max_size=20
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(EVENT_LINES, min_size=1, max_size=6), raw_cuts=st.lists(st.integers(0, 400), max_size=10)
)
def test_well_formed_events_come_out_exactly_once_and_unchanged(
    events: list[list[str]], raw_cuts: list[int]
) -> None:
    wire = [("\n".join(f"data: {line}" for line in lines)).encode() for lines in events]
    data = b"".join(event + b"\n\n" for event in wire)
    cuts = [cut for cut in raw_cuts if cut <= len(data)]
    assert _decode_in_pieces(data, cuts) == (wire, b"")
