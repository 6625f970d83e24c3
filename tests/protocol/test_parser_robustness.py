"""The parser against hostile or broken peers: it yields messages or raises
RemoteProtocolError, never anything else, and its memory stays bounded."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import (
    CONNECTION_CLOSED,
    DEFAULT_MAX_FRAME_SIZE,
    NEED_DATA,
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    ESLParser,
    Event,
    Frame,
    LogData,
    Message,
    RemoteProtocolError,
    RudeRejection,
)

from ._captures import MESSAGE_TYPES, capture_bytes, parse_chunks


def _touch(message: Message) -> None:
    """Read every derived property, as an application would."""
    if isinstance(message, Event):
        _ = (message.name, message.subclass, message.unique_id, message.job_uuid)
        _ = (message.sequence, message.channel_state, message.body, dict(message), repr(message))
    elif isinstance(message, CommandReply):
        _ = (message.reply_text, message.ok, message.job_uuid)
        if message.event is not None:
            _touch(message.event)
    elif isinstance(message, ApiResponse):
        _ = (message.body, message.ok)
    elif isinstance(message, LogData):
        _ = (message.level, message.body)
    elif isinstance(message, DisconnectNotice):
        _ = (message.disposition, message.linger, message.body)
    elif isinstance(message, Frame):
        _ = (message.content_type, message.body)


def feed_hostile(chunks: list[bytes], *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
    """Feed chunks then EOF; a RemoteProtocolError ends the stream, anything
    else escaping is a bug."""
    parser = ESLParser(max_frame_size=max_frame_size)
    try:
        for chunk in [*chunks, b""]:
            parser.receive_data(chunk)
            while True:
                result = parser.next_event()
                if result is NEED_DATA or result is CONNECTION_CLOSED:
                    break
                assert isinstance(result, MESSAGE_TYPES)
                _touch(result)
    except RemoteProtocolError:
        pass


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({cut for cut in cuts if 0 < cut < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# --- fuzzing -------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=20))
@example(data=b"Content-Length: \xc2\xb2\n\nab", cuts=[])
@example(data=b"Content-Length: " + b"9" * 5000 + b"\n\n", cuts=[])
def test_arbitrary_bytes_only_raise_remote_protocol_errors(data: bytes, cuts: list[int]) -> None:
    feed_hostile(_chunked(data, cuts), max_frame_size=1024)


# Bodies that reach into each decoder's corners, by the Content-Type they travel under.
SPECIMENS: dict[str, list[bytes]] = {
    "text/event-json": [
        b'{"Event-Name":"X","Event-Sequence":"\xc2\xb2","_body":5}',
        b'{"a":{"b":[1,{"c":null}]},"a":"again","Content-Length":"x","_body":null}',
        b"[1,2]",
        b'"just a string"',
        b"{" * 100_000,
        b'{"n":' + b"1" * 5000 + b"}",
        b"\xff\xfe{\x00}",
    ],
    "text/event-xml": [
        b'<?xml version="1.0" encoding="x-unknown"?><event/>',
        b'<?xml version="1.0" encoding="utf-16"?><event/>',
        b"<event><headers><A>%zz</A></headers><Content-Length>\xc2\xb2"
        b"</Content-Length><body>x</body></event>",
        b"<event><Content-Length>5</Content-Length><body>ab</body></event>",
        b"<event><Content-Length>" + b"9" * 5000 + b"</Content-Length></event>",
        b'<!DOCTYPE e [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><event>&b;</event>',
        b"<event><headers><A/><B>x</B></headers></event>",
    ],
    "text/event-plain": [
        b"Event-Name: X\nContent-Length: 10\n\nshort",
        b"Event-Name: X\nContent-Length: 1a\n\nbody",
        b"Event-Name: X\nContent-Length: \xc2\xb2\n\nbody",
        b"Event-Name: X\nEvent-Sequence: \xc2\xb2\n\n",
        b"Event-Name: X\nno separator\n\n",
        b"Event-Name: %zz%\xff\n\n",
    ],
    "log/data": [b"line"],
    "command/reply": [b""],
    "api/response": [b"-ERR \xff"],
    "auth/request": [b""],
    "text/disconnect-notice": [b"bye"],
    "text/rude-rejection": [b"go away"],
    "application/unknown": [b"\x00"],
}
# Outer headers whose values the message properties parse.
OUTER_HEADERS = ["Reply-Text", "Log-Level", "Content-Disposition", "Job-UUID", "Event-Name"]
header_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=30)


@st.composite
def plausible_frames(draw: st.DrawFn) -> bytes:
    """A frame with a known Content-Type whose headers and body are garbage:
    it gets past the framing into the per-type decoders."""
    content_type = draw(st.sampled_from(sorted(SPECIMENS)))
    body = draw(
        st.one_of(
            st.sampled_from(SPECIMENS[content_type]),
            st.binary(max_size=400),
            st.text(max_size=200).map(str.encode),
        )
    )
    extra = draw(st.lists(st.tuples(st.sampled_from(OUTER_HEADERS), header_text), max_size=4))
    headers = [f"Content-Type: {content_type}", *(f"{n}: {v}" for n, v in extra)]
    framing = draw(st.sampled_from(["exact", "exact", "exact", "garbage", "absent"]))
    if framing == "exact":
        headers.append(f"Content-Length: {len(body)}")
    elif framing == "garbage":
        headers.append(f"Content-Length: {draw(header_text)}")
    return ("\n".join(headers) + "\n\n").encode() + body


def _frame(content_type: str, body: bytes) -> bytes:
    return f"Content-Type: {content_type}\nContent-Length: {len(body)}\n\n".encode() + body


CORNER_CASES = {
    f"{content_type.rsplit('/', 1)[-1]}-{index}": _frame(content_type, body)
    for content_type, bodies in SPECIMENS.items()
    for index, body in enumerate(bodies)
} | {"log-level-superscript": b"Content-Type: log/data\nLog-Level: \xc2\xb2\n\n"}


@pytest.mark.parametrize("frame", CORNER_CASES.values(), ids=CORNER_CASES.keys())
def test_decoder_corner_cases_only_raise_remote_protocol_errors(frame: bytes) -> None:
    feed_hostile([frame])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=st.lists(plausible_frames(), min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 3000)),
)
def test_plausible_frames_with_garbage_only_raise_remote_protocol_errors(
    frames: list[bytes], cuts: list[int]
) -> None:
    feed_hostile(_chunked(b"".join(frames), cuts))


MUTATED_CAPTURES = [
    "inbound_bgapi_background_job",
    "inbound_sendevent_custom",
    "inbound_log",
    "inbound_errors",
    "outbound_session_plain",
    "outbound_session_json",
    "inbound_xml_lifecycle",
]


@st.composite
def mutated_capture(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(MUTATED_CAPTURES))
    raw = capture_bytes(name)
    # Large captures: mutate a window, so the decoders see damaged json/xml/plain.
    start = draw(st.integers(0, max(0, len(raw) - 6000)))
    data = bytearray(raw[start : start + 6000])
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "digit"]))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        else:
            data[position:position] = draw(st.sampled_from([b"9" * 30, b"-1", b"\xc2\xb2", b"\n"]))
        if not data:
            break
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_capture(), cuts=st.lists(st.integers(0, 6000), max_size=10))
def test_mutated_captures_only_raise_remote_protocol_errors(data: bytes, cuts: list[int]) -> None:
    feed_hostile(_chunked(data, cuts))


# --- bounds --------------------------------------------------------------------------


def test_endless_header_block_is_refused_once_over_the_bound() -> None:
    limit = 1024
    parser = ESLParser(max_frame_size=limit)
    line = b"X-Header: " + b"a" * 50 + b"\n"
    fed = 0
    while fed <= limit:
        for byte in line:
            parser.receive_data(bytes([byte]))
            fed += 1
            if fed <= limit:
                assert parser.next_event() is NEED_DATA
            else:
                with pytest.raises(RemoteProtocolError, match="max_frame_size"):
                    parser.next_event()
                break
    assert fed == limit + 1


def test_header_block_at_exactly_the_bound_is_accepted() -> None:
    limit = 256
    head = b"Content-Type: command/reply\nReply-Text: +OK "
    frame = head + b"x" * (limit - len(head) - 1) + b"\n\n"
    parser = ESLParser(max_frame_size=limit)
    parser.receive_data(frame[:-1])  # limit bytes, the final "\n" still missing
    assert parser.buffered == limit
    assert parser.next_event() is NEED_DATA
    parser.receive_data(frame[-1:])
    reply = parser.next_event()
    assert isinstance(reply, CommandReply)
    assert reply.reply_text.startswith("+OK xxx")


def test_huge_content_length_is_refused_before_the_body_arrives() -> None:
    parser = ESLParser(max_frame_size=1024)
    parser.receive_data(b"Content-Type: api/response\nContent-Length: 1025\n\n")
    with pytest.raises(RemoteProtocolError, match="exceeds max_frame_size"):
        parser.next_event()
    parser = ESLParser(max_frame_size=1024)
    parser.receive_data(b"Content-Type: api/response\nContent-Length: 1024\n\n")
    assert parser.next_event() is NEED_DATA
    parser.receive_data(b"x" * 1024)
    response = parser.next_event()
    assert isinstance(response, ApiResponse)
    assert response.body == "x" * 1024


@pytest.mark.parametrize(
    "length",
    [
        "12a",
        "-1",
        "",
        " 12",
        "1.5",
        "0x10",
        "+5",
        "²",  # str.isdigit() says yes, int() says no
        "9" * 40,
        "9" * 5000,  # beyond int()'s default digit limit
    ],
)
def test_malformed_content_length_is_a_remote_protocol_error(length: str) -> None:
    parser = ESLParser()
    parser.receive_data(f"Content-Type: api/response\nContent-Length: {length}\n\nbody".encode())
    with pytest.raises(RemoteProtocolError):
        parser.next_event()


@pytest.mark.parametrize("length", ["12a", "-1", "²", "9" * 5000, "40"])
@pytest.mark.parametrize("event_format", ["plain", "xml"])
def test_malformed_inner_content_length_is_a_remote_protocol_error(
    length: str, event_format: str
) -> None:
    if event_format == "plain":
        body = f"Event-Name: CUSTOM\nContent-Length: {length}\n\nshort".encode()
    else:
        body = (
            "<event><headers><Event-Name>CUSTOM</Event-Name></headers>"
            f"<Content-Length>{length}</Content-Length><body>short</body></event>"
        ).encode()
    frame = f"Content-Length: {len(body)}\nContent-Type: text/event-{event_format}\n\n"
    parser = ESLParser()
    parser.receive_data(frame.encode() + body)
    if event_format == "xml" and length == "40":
        # XML bodies are delimited by the element: a too-large length just takes it all.
        event = parser.next_event()
        assert isinstance(event, Event)
        assert event.body == "short"
        return
    with pytest.raises(RemoteProtocolError):
        parser.next_event()


def test_max_frame_size_has_a_floor() -> None:
    with pytest.raises(ValueError):
        ESLParser(max_frame_size=63)


# --- end of stream -------------------------------------------------------------------


def _drain(parser: ESLParser) -> None:
    while parser.next_event() is not CONNECTION_CLOSED:
        pass


@pytest.mark.parametrize(
    "truncated",
    [
        b"Content-Type: auth/request\n",
        b"Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK",
        b"Content-Type: api/response\nContent-Length: 10\n\nabc",
        b"Content-Type: api/response\nContent-Length: 10\n\n",
        b"C",
    ],
)
def test_a_truncated_frame_at_eof_is_a_remote_protocol_error(truncated: bytes) -> None:
    parser = ESLParser()
    parser.receive_data(truncated)
    parser.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="middle of a frame"):
        _drain(parser)


def _frame_ends(data: bytes) -> set[int]:
    """Offsets at which a message completes, found by feeding byte by byte."""
    parser = ESLParser()
    ends = {0}
    for offset in range(len(data)):
        parser.receive_data(data[offset : offset + 1])
        while parser.next_event() is not NEED_DATA:
            ends.add(offset + 1)
    return ends


@pytest.mark.parametrize("name", ["inbound_errors", "inbound_log", "inbound_sendevent_custom"])
def test_every_cut_is_either_a_clean_close_or_a_truncation_error(name: str) -> None:
    data = capture_bytes(name)
    ends = _frame_ends(data)
    assert len(ends) == len(parse_chunks([data])) + 1
    for cut in range(len(data) + 1):
        parser = ESLParser()
        parser.receive_data(data[:cut])
        parser.receive_data(b"")
        if cut in ends:
            while (result := parser.next_event()) is not CONNECTION_CLOSED:
                assert isinstance(result, MESSAGE_TYPES)
        else:
            with pytest.raises(RemoteProtocolError):
                _drain(parser)


def test_receiving_after_eof_is_a_usage_error() -> None:
    parser = ESLParser()
    parser.receive_data(b"")
    parser.receive_data(b"")  # repeating EOF is harmless
    assert parser.next_event() is CONNECTION_CLOSED
    with pytest.raises(RuntimeError):
        parser.receive_data(b"x")


# --- other frames --------------------------------------------------------------------


def test_unknown_rude_and_stray_blank_lines() -> None:
    parser = ESLParser()
    parser.receive_data(
        b"\n\nContent-Type: text/rude-rejection\nContent-Length: 14\n\nAccess Denied\n"
        b"\nContent-Type: application/x-new\nContent-Length: 3\nX: y\n\n\x00\xff\n"
        b"Content-Type: auth/request\n\n"
    )
    rude = parser.next_event()
    assert isinstance(rude, RudeRejection)
    assert rude.body == "Access Denied\n"
    unknown = parser.next_event()
    assert isinstance(unknown, Frame)
    assert unknown.content_type == "application/x-new"
    assert unknown.body == b"\x00\xff\n"
    assert unknown.headers["X"] == "y"
    assert isinstance(parser.next_event(), AuthRequest)
    assert parser.next_event() is NEED_DATA


# --- XML events: no DTDs, no entities (issue 10, item 17) ----------------------------

_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE event ['
    b'<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">'
    + b"".join(
        f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">'.encode() for n in range(8)
    )
    + b"]><event><headers><Event-Name>CUSTOM</Event-Name><X>&i;</X></headers></event>"
)


@pytest.mark.parametrize(
    "document",
    [
        # Harmless-looking: the old parser expanded it and returned X-Value "x".
        b'<!DOCTYPE event [<!ENTITY x "x">]>'
        b"<event><headers><Event-Name>CUSTOM</Event-Name><X-Value>&x;</X-Value></headers></event>",
        # A bare DOCTYPE: FreeSWITCH never sends one.
        b"<!DOCTYPE event><event><headers><Event-Name>CUSTOM</Event-Name></headers></event>",
        # External entity: never fetched, refused.
        b'<!DOCTYPE event [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<event><headers><X>&e;</X></headers></event>",
        # Nested entities (billion laughs, 524 bytes in the issue): refused at the DOCTYPE.
        _LAUGHS,
    ],
    ids=["internal-entity", "bare-doctype", "external-entity", "nested-entities"],
)
def test_xml_event_with_a_dtd_or_entities_is_refused(document: bytes) -> None:
    frame = f"Content-Length: {len(document)}\nContent-Type: text/event-xml\n\n".encode()
    parser = ESLParser()
    parser.receive_data(frame + document)
    with pytest.raises(RemoteProtocolError, match="DTD or entity"):
        parser.next_event()


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("caller%20one", "caller one"),
        ("line%0Abreak", "line\nbreak"),
        ("nul%00char", "nul\x00char"),  # an encoded NUL: decoded value by value
        ("%C3", "\ufffd"),  # a partial UTF-8 sequence is replaced within its own value
        ("100%25", "100%"),
        ("%E2%82%AC%", "€%"),  # a lone "%" stays, as unquote leaves it
        ("plain", "plain"),
    ],
)
def test_connect_reply_channel_data_is_url_decoded_value_by_value(
    encoded: str, decoded: str
) -> None:
    parser = ESLParser()
    parser.receive_data(
        b"Content-Type: command/reply\nReply-Text: %2BOK%0A\nEvent-Name: CHANNEL_DATA\n"
        + f"Unique-ID: u1\nvariable_a: {encoded}\nvariable_b: x%3Ay\n\n".encode()
    )
    reply = parser.next_event()
    assert isinstance(reply, CommandReply)
    assert reply.event is not None
    assert reply.event["variable_a"] == decoded
    assert reply.event["variable_b"] == "x:y"
    assert reply.event["Reply-Text"] == "+OK\n"
    assert reply.event["Unique-ID"] == "u1"
