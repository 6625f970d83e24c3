"""Events decoded on demand must agree with events decoded at once, header by header."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import (
    CONNECTION_CLOSED,
    NEED_DATA,
    CommandReply,
    ESLParser,
    Event,
    EventFormat,
    RemoteProtocolError,
    encode_event_frame,
)
from genesis_trio.protocol._codec import url_encode
from genesis_trio.protocol._lookup import UNSURE, lookup_plain

from ._captures import capture_bytes


def _events(data: bytes, *, lazy: bool) -> list[Event]:
    parser = ESLParser(lazy_events=lazy)
    parser.receive_data(data)
    parser.receive_data(b"")
    events: list[Event] = []
    while (message := parser.next_event()) is not CONNECTION_CLOSED:
        assert message is not NEED_DATA
        if isinstance(message, Event):
            events.append(message)
    return events


PROBES = ("Nope", "Event-Nam", "vent-Name", "Content-Length", "_body", "Event-Name:")


@pytest.mark.parametrize(
    "capture",
    [
        "inbound_plain_lifecycle",
        "inbound_json_lifecycle",
        "inbound_plain_sipp_call",
        "inbound_sendevent_custom",
        "inbound_bgapi_background_job",
        "outbound_session_plain",
        "outbound_session_json",
    ],
)
def test_every_lookup_matches_the_full_decode(capture: str) -> None:
    data = capture_bytes(capture)
    eager = _events(data, lazy=False)
    lazy_events = _events(data, lazy=True)
    assert len(eager) == len(lazy_events)
    for full, lazy in zip(eager, lazy_events, strict=True):
        for name in [*full.headers, *PROBES]:
            assert lazy.get(name) == full.get(name), name
            assert (name in lazy) == (name in full)
        # A second reading (remembered from the first) agrees too, absent ones included.
        for name in [*full.headers, *PROBES]:
            assert lazy.get(name, "-") == full.get(name, "-"), name
        assert lazy.name == full.name
        assert lazy.unique_id == full.unique_id
        # Then the whole event, decoded on demand.
        assert lazy == full
        assert lazy.body == full.body


@settings(max_examples=200, deadline=None)
@given(
    headers=st.lists(
        st.tuples(
            st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,12}", fullmatch=True),
            st.text(max_size=30),
        ),
        min_size=1,
        max_size=12,
    ),
    body=st.none() | st.text(max_size=40),
    event_format=st.sampled_from(["plain", "json"]),
)
def test_lazy_and_eager_agree_on_arbitrary_events(
    headers: list[tuple[str, str]], body: str | None, event_format: EventFormat
) -> None:
    pairs = [(name, value) for name, value in headers if name != "Content-Length"]
    original = Event(pairs or [("Event-Name", "CUSTOM")], body)
    frame = encode_event_frame(original, event_format)
    (eager,) = _events(frame, lazy=False)
    (lazy,) = _events(frame, lazy=True)
    for name, _ in pairs:
        assert lazy.get(name) == eager.get(name)
    assert lazy == eager


def test_a_malformed_lazy_event_raises_when_read() -> None:
    frame = b"Content-Length: 12\nContent-Type: text/event-json\n\n{not json!!}"
    (event,) = _events(frame, lazy=True)
    with pytest.raises(RemoteProtocolError):
        _ = event.headers
    with pytest.raises(RemoteProtocolError):
        list(_events(frame, lazy=False))


# --- the outbound connect reply: its header block is the channel data ---------------


def _only_message(data: bytes, *, lazy: bool) -> object:
    parser = ESLParser(lazy_events=lazy)
    parser.receive_data(data)
    message = parser.next_event()
    assert parser.next_event() is NEED_DATA
    return message


def _assert_connect_replies_agree(data: bytes, names: list[str]) -> None:
    eager = _only_message(data, lazy=False)
    lazy = _only_message(data, lazy=True)
    assert isinstance(eager, CommandReply)
    assert isinstance(lazy, CommandReply)
    assert eager.event is not None
    assert lazy.event is not None
    # Single headers first (read from the undecoded bytes), then everything.
    assert lazy.reply_text == eager.reply_text
    assert lazy.ok == eager.ok
    assert lazy.job_uuid == eager.job_uuid
    for name in [*names, *PROBES]:
        assert lazy.event.get(name) == eager.event.get(name), name
    assert lazy.event == eager.event
    assert lazy.headers == eager.headers
    for name in names:
        assert lazy.headers.get_all(name) == eager.headers.get_all(name), name
    assert lazy == eager
    assert repr(lazy) == repr(eager)


def test_a_connect_reply_read_lazily_matches_the_full_decode() -> None:
    data = capture_bytes("outbound_session_plain")
    frame = data[: data.index(b"\n\n") + 2]
    eager = _only_message(frame, lazy=False)
    assert isinstance(eager, CommandReply)
    assert eager.event is not None
    _assert_connect_replies_agree(frame, list(eager.headers))


@settings(max_examples=200, deadline=None)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(["Unique-ID", "Reply-Text", "variable_x", "Job-UUID"])
            | st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,12}", fullmatch=True),
            st.text(max_size=30).map(url_encode) | st.from_regex(r"[^\n]{0,20}", fullmatch=True),
        ),
        max_size=12,
    ),
)
def test_lazy_and_eager_connect_replies_agree(headers: list[tuple[str, str]]) -> None:
    """Any channel data, URL-encoded or not (stray ``%``, repeated names, empty values)."""
    pairs = [
        ("Content-Type", "command/reply"),
        ("Event-Name", "CHANNEL_DATA"),
        *((name, value) for name, value in headers if name != "Content-Length"),
    ]
    block = "".join(f"{name}: {value}\n" for name, value in pairs)
    _assert_connect_replies_agree(block.encode() + b"\n", [name for name, _ in pairs])


def test_command_replies_stay_immutable_and_unhashable() -> None:
    data = capture_bytes("outbound_session_plain")
    reply = _only_message(data[: data.index(b"\n\n") + 2], lazy=True)
    assert isinstance(reply, CommandReply)
    with pytest.raises(AttributeError):
        reply.event = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(reply)
    assert pickle.loads(pickle.dumps(reply)) == reply
    match reply:
        case CommandReply(headers, event):
            assert headers is reply.headers
            assert event is reply.event


_ODD_NAMES = ["Unique-ID", "Unique-ID-X", "Event-Name", "A"]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(_ODD_NAMES),
            st.sampled_from([": ", ":", ":  ", ": %41"]),
            st.sampled_from(["", "v", "w x", "%20"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_single_header_reads_agree_with_the_full_decode_on_odd_spellings(
    lines: list[tuple[str, str, str]],
) -> None:
    # Bare "Name:" lines, no space after the colon, repeats, a name that extends
    # another: what FreeSWITCH never writes, but a peer might.
    block = "".join(f"{name}{colon}{value}\n" for name, colon, value in lines) + "\n"
    frame = b"Content-Length: %d\nContent-Type: text/event-plain\n\n%s" % (
        len(block.encode()),
        block.encode(),
    )
    (eager,) = _events(frame, lazy=False)
    for name in _ODD_NAMES:
        (lazy,) = _events(frame, lazy=True)
        assert lazy.get(name) == eager.get(name), (name, block)


# --- the header block's end, found only as far as the lookups need ------------------

_BLOCK_NAMES = ["Event-Name", "Unique-ID", "Answer-State", "Content-Length", "X"]


@settings(max_examples=300, deadline=None)
@given(
    head=st.lists(
        st.tuples(st.sampled_from(_BLOCK_NAMES), st.sampled_from(["v", "", "%41", "a b"])),
        max_size=6,
    ),
    body=st.lists(
        st.sampled_from(["", "Unique-ID: body", "Answer-State: no", "X: y", "\n", "Event-Name: B"]),
        max_size=6,
    ).map("\n".join),
    with_body=st.booleans(),
    order=st.permutations(_BLOCK_NAMES),
)
def test_lookups_without_the_header_end_agree_with_the_bounded_lookup(
    head: list[tuple[str, str]], body: str, with_body: bool, order: list[str]
) -> None:
    """A plain event whose body holds header-like lines and blank lines, read in any order.

    The lookups find the header block's end only as far as they need (see Event);
    the plain implementation is given the end up front, and the full decode reads it all.
    """
    block = "".join(f"{name}: {value}\n" for name, value in head if name != "Content-Length")
    if with_body:
        raw = f"{block}Content-Length: {len(body.encode())}\n\n{body}".encode()
    else:
        raw = f"{block}\n".encode()
    split = raw.find(b"\n\n")
    head_end = len(raw) if split < 0 else split
    lazy = Event._lazy(raw, "plain")
    eager = _events(encode_frame(raw), lazy=False)[0]
    for name in order:
        expected = lookup_plain(raw, head_end, name)
        if expected is UNSURE:
            expected = eager.get(name)
        assert lazy.get(name) == expected == eager.get(name), name
    assert lazy == eager


def encode_frame(raw: bytes) -> bytes:
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(raw) + raw
