"""The SSE decoder and event model: every valid framing, any cuts, exact bytes for what is unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._streaming import SSEDecoder as ClientDecoder  # what the official SDK parses streams with

from llm_gateway.core.sse import KEEPALIVE, SSEDecoder, SSEEvent, encode_events, format_event

STREAM = (
    b'data: {"choices":[{"delta":{"content":"jane.do"}}]}\n\n'
    b": keep-alive\n\n"
    b"event: ping\ndata: a\ndata: b\n\n"
    b"id: 7\nevent: message\nretry: 100\ndata:x\n\n"
    b"data: [DONE]\n\n"
)
DATA = [b'{"choices":[{"delta":{"content":"jane.do"}}]}', None, b"a\nb", b"x", b"[DONE]"]


def decode(data: bytes, cuts: list[int] = ()) -> tuple[list[SSEEvent], SSEEvent | None, bool]:  # type: ignore[assignment]
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    start = 0
    for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
        events.extend(decoder.decode(data[start:cut]))
        start = cut
    last = decoder.finish()
    return events, last, decoder.truncated


def test_decodes_fields_and_keeps_the_exact_bytes() -> None:
    events, last, truncated = decode(STREAM)
    assert [event.data for event in events] == DATA
    assert encode_events(events) == STREAM
    assert (last, truncated) == (None, False)
    assert events[2].field(b"event") == b"ping"
    fields = [events[3].field(name) for name in (b"id", b"retry", b"event")]
    assert fields == [b"7", b"100", b"message"]


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_the_same_events_wherever_the_stream_is_cut(cut: int) -> None:
    events, _, _ = decode(STREAM, [cut])
    assert encode_events(events) == STREAM


def test_byte_by_byte() -> None:
    events, _, _ = decode(STREAM, list(range(1, len(STREAM))))
    assert encode_events(events) == STREAM


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_ends_even_when_split(newline: bytes) -> None:
    data = STREAM.replace(b"\n", newline)
    for cut in range(0, len(data)):
        events, _, truncated = decode(data, [cut])
        assert [event.data for event in events] == DATA, cut
        assert not truncated


def test_a_last_event_without_its_blank_line_is_delivered() -> None:
    events, last, truncated = decode(b'data: {"a":1}\n\ndata: [DONE]\n')
    assert [event.data for event in events] == [b'{"a":1}']
    assert last is not None and last.data == b"[DONE]" and last.raw == b"data: [DONE]\n\n"
    assert not truncated


def test_a_stream_cut_inside_a_line_is_truncated() -> None:
    events, last, truncated = decode(b'data: {"a":1}\n\ndata: {"b"')
    assert [event.data for event in events] == [b'{"a":1}']
    assert (last, truncated) == (None, True)


def test_with_data_keeps_every_other_line_in_place() -> None:
    [event] = SSEDecoder().decode(b": note\nid: 3\ndata: old\nevent: message\ndata: more\n\n")
    rewritten = event.with_data(b"new\nlines")
    assert rewritten.raw == b": note\nid: 3\ndata: new\ndata: lines\nevent: message\n\n"
    assert rewritten.data == b"new\nlines"


def test_format_event_and_keepalive_are_single_well_formed_events() -> None:
    assert [e.data for e in decode(format_event(b'{"error":{}}'))[0]] == [b'{"error":{}}']
    assert [e.raw for e in decode(KEEPALIVE)[0]] == [KEEPALIVE]


def test_a_leading_byte_order_mark_is_ignored() -> None:
    assert [e.data for e in decode(b"\xef\xbb\xbfdata: a\n\n")[0]] == [b"a"]


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=12))
def test_any_bytes_cut_anywhere_decode_like_one_piece(data: bytes, cuts: list[int]) -> None:
    whole, last, truncated = decode(data)
    pieces, last_pieces, truncated_pieces = decode(data, cuts)
    assert [e.data for e in pieces] == [e.data for e in whole]
    assert (last_pieces and last_pieces.data, truncated_pieces) == (last and last.data, truncated)


# A valid framing of one event: fields in any order, data split over lines, optional space.
FIELD_VALUE = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12)


@st.composite
def framed_stream(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str | None, str | None]]]:
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    events = []
    wire = ""
    for _ in range(draw(st.integers(1, 5))):
        data_lines = draw(st.lists(FIELD_VALUE, min_size=1, max_size=3))
        kind = draw(st.none() | st.sampled_from(["message", "delta"]))
        event_id = draw(st.none() | st.text("0123456789", min_size=1, max_size=3))
        lines = [("data", value) for value in data_lines]
        if kind is not None:
            lines.insert(draw(st.integers(0, len(lines))), ("event", kind))
        if event_id is not None:
            lines.insert(draw(st.integers(0, len(lines))), ("id", event_id))
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), ("", " a comment"))
        for name, value in lines:
            space = " " if value.startswith(" ") or draw(st.booleans()) else ""
            wire += f"{name}:{space}{value}{newline}"
        wire += newline
        events.append(("\n".join(data_lines), kind, event_id))
    return wire.encode(), events


@settings(max_examples=300, deadline=None)
@given(stream=framed_stream(), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_any_valid_framing_means_what_the_official_client_reads(
    stream: tuple[bytes, list[tuple[str, str | None, str | None]]], cuts: list[int]
) -> None:
    wire, expected = stream
    events, last, truncated = decode(wire, cuts)
    assert (last, truncated) == (None, False)
    client = [(e.data, e.event, e.id) for e in ClientDecoder().iter_bytes(iter([encode_events(events)]))]
    last_id, wanted = None, []
    for data, kind, event_id in expected:  # an id holds for the events after it, as the spec says
        last_id = event_id if event_id is not None else last_id
        wanted.append((data, kind, last_id))
    assert client == wanted
    assert [(e.data or b"").decode() for e in events] == [data for data, _, _ in expected]


def test_a_last_event_ended_by_a_cr_is_closed_so_nothing_after_it_joins_it() -> None:
    events, last, _ = decode(b'data: {"a":1}\r\rdata: {"b":2}\r')
    assert last is not None and last.raw == b'data: {"b":2}\n\n'
    wire = encode_events([*events, last, SSEEvent.of_data(b"[DONE]")])
    assert [e.data for e in ClientDecoder().iter_bytes(iter([wire]))] == ['{"a":1}', '{"b":2}', "[DONE]"]


def test_pending_bytes_counts_what_an_unended_event_holds() -> None:
    decoder = SSEDecoder()
    for byte in b"data: abc":  # a line a byte at a time
        decoder.decode(bytes([byte]))
    assert decoder.pending_bytes == 9
    decoder.decode(b"\nid: 1\r\n")
    assert decoder.pending_bytes == len(b"data: abc\nid: 1\r\n")
    [event] = decoder.decode(b"\n")
    assert event.raw == b"data: abc\nid: 1\r\n\n" and decoder.pending_bytes == 0
    decoder.decode(b"data: tail")
    decoder.finish()
    assert decoder.pending_bytes == 0
