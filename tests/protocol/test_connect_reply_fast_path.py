"""The parser's fast path for an outbound ``connect`` reply (the channel data as headers).

The block starts with ``Event-Name`` and is kept undecoded without being split
into a header dict first. Whatever the bytes, the parser must read a stream
exactly as the general path does: same messages, same errors.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import (
    CONNECTION_CLOSED,
    NEED_DATA,
    CommandReply,
    ESLParser,
    RemoteProtocolError,
)

from ._captures import capture_bytes
from .test_event_frame_fast_path import _cut, _read


class _GeneralOnly(ESLParser):
    """The parser without the connect-reply fast path."""

    def _channel_data_frame(self, buffer: bytearray, end: int) -> CommandReply | None:
        return None


def _kinds(parser: ESLParser, chunks: list[bytes]) -> list[object]:
    """The messages' types as the parser returns them and, last, the error that ended it."""
    out: list[object] = []
    try:
        for chunk in [*chunks, b""]:
            parser.receive_data(chunk)
            while (message := parser.next_event()) is not NEED_DATA:
                out.append(type(message).__name__)
                if message is CONNECTION_CLOSED:
                    return out
    except RemoteProtocolError as exc:
        out.append(("error", str(exc)))
    return out


def _recorded_connect_reply() -> bytes:
    data = capture_bytes("outbound_session_plain")
    return data[: data.find(b"\n\n") + 2]


_LINES = [
    b"Unique-ID: 737e7aab-770e-4948-bd73-a8a2c25a23c7",
    b"Channel-Name: loopback/9000-b",
    b"Caller-Callee-ID-Name: Outbound%20Call",
    b"variable_x: a%3Ab",
    b"Content-Type: command/reply",
    b"Content-Type:command/reply",
    b"Content-Type: command/reply ",
    b"Content-Type: command%2Freply",
    b"Content-Type: text/event-plain",
    b"Content-Type: api/response",
    b"Reply-Text: %2BOK%0A",
    b"Reply-Text: -ERR no",
    b"Content-Length: 5",
    b"Content-Length:5",
    b"Content-Length : 5",
    b"Socket-Mode: async",
    b"Name:no-space",
    b"Name: ",
    b"no colon at all",
    b": no name",
    b"Bad Name: spaces",
    b"A:B: colon in a value",
    b"Unique-ID: repeated",
    b"Bytes: \xff\xfe invalid utf-8",
    b"Caf\xc3\xa9: \xc3\xa9",
]


@st.composite
def _connect_replies(draw: st.DrawFn) -> bytes:
    """Connect replies as FreeSWITCH writes them, and near misses of them."""
    first = draw(st.sampled_from([b"Event-Name: CHANNEL_DATA", b"Event-Name:CHANNEL_DATA"]))
    lines = draw(st.lists(st.sampled_from(_LINES), max_size=8))
    block = b"\n".join([first, *lines]) + b"\n\n"
    body = draw(
        st.sampled_from([b"", b"12345", b"Content-Type: command/reply\nReply-Text: +OK\n\n"])
    )
    return block + body


@settings(max_examples=400, deadline=None)
@given(
    frames=st.lists(_connect_replies(), min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=4),
)
def test_connect_replies_read_as_the_general_path_reads_them(
    frames: list[bytes], cuts: list[int]
) -> None:
    chunks = _cut(b"".join(frames), cuts)
    for limit in (None, 64):
        # Twice: messages read in full, and only as they come out (an error the general
        # path raises while parsing must not wait until someone reads the headers).
        for read in (_read, _kinds):
            fast = read(ESLParser(lazy_events=True, max_frame_size=limit or 1 << 20), chunks)
            general = read(_GeneralOnly(lazy_events=True, max_frame_size=limit or 1 << 20), chunks)
            assert fast == general


def test_the_recorded_connect_reply_takes_the_fast_path() -> None:
    # (Else the property above would hold with a fast path that never runs.)
    class Counting(ESLParser):
        taken = 0

        def _channel_data_frame(self, buffer: bytearray, end: int) -> CommandReply | None:
            reply = super()._channel_data_frame(buffer, end)
            Counting.taken += reply is not None
            return reply

    frame = _recorded_connect_reply()
    assert _read(Counting(lazy_events=True), [frame]) == _read(
        _GeneralOnly(lazy_events=True), [frame]
    )
    assert Counting.taken == 1
