"""Events decoded on demand must agree with events decoded at once, header by header."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import (
    CONNECTION_CLOSED,
    NEED_DATA,
    ESLParser,
    Event,
    EventFormat,
    RemoteProtocolError,
    encode_event_frame,
)

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
