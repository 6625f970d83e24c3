"""Headers multi-value semantics, URL coding, and event encode/parse round trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import (
    ESLParser,
    Event,
    EventFormat,
    Headers,
    decode_event,
    encode_event_body,
    encode_event_frame,
    url_decode,
    url_encode,
)

from ._captures import MESSAGE_TYPES

# --- Headers -------------------------------------------------------------------------


def test_headers_index_gives_the_first_value_and_get_all_every_value() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("A", "3"), ("a", "4")])
    assert headers["A"] == "1"
    assert headers.get_all("A") == ["1", "3"]
    assert headers.get_all("a") == ["4"]  # names are case-sensitive, as on the wire
    assert headers.get_all("missing") == []
    assert list(headers) == ["A", "B", "a"]
    assert len(headers) == 3
    assert list(headers.multi_items()) == [("A", "1"), ("A", "3"), ("B", "2"), ("a", "4")]
    assert headers.get("missing") is None
    assert headers.get("missing", "default") == "default"
    assert "A" in headers
    assert "missing" not in headers
    with pytest.raises(KeyError):
        headers["missing"]


def test_headers_equality() -> None:
    single = Headers([("A", "1"), ("B", "2")])
    assert single == {"B": "2", "A": "1"}
    assert single == Headers({"A": "1", "B": "2"})
    multi = Headers([("A", "1"), ("A", "2")])
    assert multi != {"A": "1"}  # a mapping cannot express the second value
    assert multi != Headers([("A", "1")])
    assert multi != Headers([("A", "2"), ("A", "1")])
    assert multi == Headers([("A", "1"), ("A", "2")])
    assert single != [("A", "1"), ("B", "2")]
    with pytest.raises(TypeError):
        hash(single)


def test_copying_headers_keeps_every_value() -> None:
    original = Headers([("A", "1"), ("B", "2"), ("A", "3")])
    copy = Headers(original)
    assert copy.get_all("A") == ["1", "3"]
    assert list(copy.multi_items()) == list(original.multi_items())
    assert copy == original


header_names = st.sampled_from(["A", "B", "C", "Event-Name", "variable_x", "a"])
pair_lists = st.lists(st.tuples(header_names, st.text(max_size=5)), max_size=20)


@given(pairs=pair_lists)
def test_headers_model_a_list_of_pairs(pairs: list[tuple[str, str]]) -> None:
    headers = Headers(pairs)
    first_seen = list(dict.fromkeys(name for name, _ in pairs))
    assert list(headers) == first_seen
    assert len(headers) == len(first_seen)
    for name in first_seen:
        values = [value for n, value in pairs if n == name]
        assert headers.get_all(name) == values
        assert headers[name] == values[0]
    assert sorted(headers.multi_items()) == sorted(pairs)
    assert sum(len(headers.get_all(name)) for name in headers) == len(pairs)
    assert Headers(list(headers.multi_items())) == headers
    assert Headers(headers) == headers
    event = Event(headers)
    assert dict(event) == dict(headers)
    assert all(event.get_all(name) == headers.get_all(name) for name in headers)


def test_event_helpers() -> None:
    event = Event(
        [
            ("Event-Name", "CUSTOM"),
            ("Event-Subclass", "esl::test"),
            ("Unique-ID", "u"),
            ("Event-Sequence", "²"),
            ("variable_sip_call_id", "abc"),
        ]
    )
    assert (event.name, event.subclass, event.unique_id) == ("CUSTOM", "esl::test", "u")
    assert event.variable("sip_call_id") == "abc"
    # Not an ASCII number: no sequence rather than a crash.
    assert event.sequence is None
    assert Event([("Event-Sequence", "42")]).sequence == 42
    assert repr(event) == "<Event CUSTOM::esl::test u>"


# --- URL coding ----------------------------------------------------------------------


def test_url_encoding_matches_freeswitch() -> None:
    assert url_encode("value with spaces & symbols=%") == (
        "value%20with%20spaces%20%26%20symbols%3D%25"
    )
    assert url_encode("+OK\n") == "%2BOK%0A"
    assert url_encode("fd00::2") == "fd00%3A%3A2"
    assert url_encode("tone_stream://%(300,100,440);loops=2") == (
        "tone_stream%3A//%25(300,100,440)%3Bloops%3D2"
    )
    # An existing upper-case %XX is kept, as the real switch does: the value arrives decoded.
    assert url_encode("100% off %41 %4a") == "100%25%20off%20%41%20%254a"
    assert url_decode(url_encode("100% off %41")) == "100% off A"
    assert url_decode("a+b") == "a+b"  # "+" is not a space in FreeSWITCH's encoding
    assert url_decode("%E2%82%AC") == "€"


# Values FreeSWITCH's encoding carries exactly: no '%' followed by two upper-case hex digits.
exact_values = st.text().filter(lambda value: re.search(r"%[0-9A-F]{2}", value) is None)


@given(value=exact_values)
def test_url_coding_round_trips_and_encodes_to_safe_ascii(value: str) -> None:
    encoded = url_encode(value)
    assert url_decode(encoded) == value
    assert encoded.isascii()
    assert not any(char in encoded for char in '\r\n :+&"<>')


# --- event round trips ----------------------------------------------------------------

plain_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,24}\Z").filter(
    lambda name: name != "Content-Length"
)
any_values = exact_values  # unicode, %, +, spaces, newlines, control characters
event_pairs = st.lists(st.tuples(plain_names, any_values), max_size=12)
event_bodies = st.one_of(st.none(), st.text())


def _parse_frame(frame: bytes) -> Event:
    parser = ESLParser()
    parser.receive_data(frame)
    parser.receive_data(b"")
    message = parser.next_event()
    assert isinstance(message, MESSAGE_TYPES)
    assert isinstance(message, Event)
    assert parser.buffered == 0
    return message


def _expected_after_framing(pairs: list[tuple[str, str]], body: str | None) -> Headers:
    # Framing appends the body's Content-Length as the event's last header.
    if body is None:
        return Headers(pairs)
    return Headers([*pairs, ("Content-Length", str(len(body.encode("utf-8"))))])


@settings(max_examples=300)
@given(pairs=event_pairs, body=event_bodies)
def test_plain_event_round_trip(pairs: list[tuple[str, str]], body: str | None) -> None:
    event = Event(pairs, body)
    decoded = _parse_frame(encode_event_frame(event, "plain"))
    expected = _expected_after_framing(pairs, body)
    assert decoded.headers == expected
    assert list(decoded.headers.multi_items()) == list(expected.multi_items())
    assert decoded.body == body
    # Re-encoding what was decoded is stable.
    assert _parse_frame(encode_event_frame(decoded, "plain")) == decoded


@settings(max_examples=200)
@given(pairs=event_pairs, body=event_bodies)
def test_json_event_round_trip(pairs: list[tuple[str, str]], body: str | None) -> None:
    decoded = _parse_frame(encode_event_frame(Event(pairs, body), "json"))
    assert list(decoded.headers.multi_items()) == list(
        _expected_after_framing(pairs, body).multi_items()
    )
    assert decoded.body == body


# XML 1.0 cannot carry most control characters in a body at all; FreeSWITCH's own
# serialiser has the same limit. Everything XML can carry must survive, "\r" included.
xml_body_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"], include_characters="\t\n\r")
)


@settings(max_examples=200)
@given(pairs=event_pairs, body=st.one_of(st.none(), xml_body_text))
@example(pairs=[("Event-Name", "CUSTOM")], body="line\r\nnext\r")
def test_xml_event_round_trip(pairs: list[tuple[str, str]], body: str | None) -> None:
    decoded = _parse_frame(encode_event_frame(Event(pairs, body), "xml"))
    assert list(decoded.headers.multi_items()) == list(
        _expected_after_framing(pairs, body).multi_items()
    )
    assert decoded.body == body


@pytest.mark.parametrize("event_format", ["plain", "json", "xml"])
def test_repeated_content_length_in_a_bodied_event_survives(event_format: EventFormat) -> None:
    # sendevent with its own Content-Length: FreeSWITCH keeps the sender's header
    # and appends its own, so the event carries two (see inbound_sendevent_custom).
    event = Event(
        [
            ("Event-Name", "CUSTOM"),
            ("Content-Length", "5"),
            ("Event-UUID", "u"),
            ("Content-Length", "5"),
        ],
        "hello",
    )
    decoded = decode_event(encode_event_body(event, event_format), event_format)
    assert decoded == event
    assert decoded.get_all("Content-Length") == ["5", "5"]


def test_plain_encoding_matches_the_recorded_event_text() -> None:
    event = Event(
        [
            ("Event-Name", "BACKGROUND_JOB"),
            ("Event-Date-Local", "2026-11-25 03:23:54"),
            ("Job-Command", "status"),
        ],
        "-ERR x\n",
    )
    assert encode_event_frame(event, "plain") == (
        b"Content-Length: 117\nContent-Type: text/event-plain\n\n"
        b"Event-Name: BACKGROUND_JOB\nEvent-Date-Local: 2026-11-25%2003%3A23%3A54\n"
        b"Job-Command: status\nContent-Length: 7\n\n-ERR x\n"
    )
