"""The parser's fast paths for frames in mod_event_socket's own spelling.

``Content-Length: N`` / ``Content-Type: text/event-plain`` (or json) and a
blank line is how FreeSWITCH writes every event, ``Content-Type: api/response``
/ ``Content-Length: N`` and a blank line every api reply; the parser recognises
those bytes without building a header block. Whatever the bytes, it must read a
stream exactly as the general path does: same messages, same errors.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import (
    CONNECTION_CLOSED,
    NEED_DATA,
    ApiResponse,
    ESLParser,
    Event,
    Message,
    RemoteProtocolError,
)
from genesis_trio.protocol._parser import NEED_DATA as _NEED_DATA

from ._captures import capture_bytes, received_capture_names


class _GeneralOnly(ESLParser):
    """The parser as it was before the fast path: every frame through the header block."""

    def _event_frame(self, buffer: bytearray) -> Message | None:
        return None

    def _api_frame(self, buffer: bytearray) -> ApiResponse | None:
        return None


def _read(parser: ESLParser, chunks: list[bytes]) -> list[object]:
    """Messages (as comparable tuples) and, last, the error that ended the stream."""
    out: list[object] = []
    try:
        for chunk in [*chunks, b""]:
            parser.receive_data(chunk)
            while (message := parser.next_event()) is not NEED_DATA:
                if message is CONNECTION_CLOSED:
                    out.append("closed")
                    return out
                out.append(_comparable(message))
    except RemoteProtocolError as exc:
        out.append(("error", str(exc)))
    return out


def _comparable(message: object) -> object:
    if isinstance(message, Event):
        try:
            return ("event", list(message.headers.multi_items()), message.body)
        except RemoteProtocolError as exc:
            return ("bad event", str(exc))
    headers = getattr(message, "headers", None)
    if headers is not None:
        # Headers in order, values and all (a repr could hide a difference).
        items = list(headers.multi_items())
        return (type(message).__name__, items, getattr(message, "body", None), repr(message))
    return (type(message).__name__, repr(message))


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


_BODY = (
    b"Event-Name: CHANNEL_STATE\nUnique-ID: 6c5b\nChannel-State: CS_ROUTING\n"
    b"Event-Sequence: 42\nCaller-Callee-ID-Name: Outbound%20Call\n\n"
)
_JSON_BODY = b'{"Event-Name":"HEARTBEAT","Event-Sequence":"7","Up-Time":"0 years"}'


@st.composite
def _frames(draw: st.DrawFn) -> bytes:
    """Event frames in FreeSWITCH's spelling, and near misses of it."""
    kind = draw(st.sampled_from(["plain", "json", "other"]))
    body = draw(st.sampled_from([_BODY, _JSON_BODY, b"", b"Event-Name: X\n\n", b"garbage"]))
    size = len(body)
    near = [str(size), f"0{size}", str(size + 3), str(max(size - 2, 0))]
    length = draw(st.sampled_from([*near, "", "-1", "1e3", "99999999999999", " 12", "١٢"]))
    content_type = {
        "plain": "text/event-plain",
        "json": "text/event-json",
        "other": draw(st.sampled_from(["text/event-xml", "api/response", "text/event-plainx"])),
    }[kind]
    head = f"Content-Length: {length}\nContent-Type: {content_type}\n\n"
    if draw(st.booleans()):
        head = draw(
            st.sampled_from(
                [
                    f"Content-Type: {content_type}\nContent-Length: {length}\n\n",
                    f"Content-Length: {length}\nContent-Type: {content_type}\nX: y\n\n",
                    f"Content-Length:{length}\nContent-Type: {content_type}\n\n",
                    f"\n\nContent-Length: {length}\nContent-Type: {content_type}\n\n",
                ]
            )
        )
    return head.encode("utf-8") + body


_API_BODY = (
    "UP 0 years, 0 days, 0 hours, 0 minutes, 2 seconds\nFreeSWITCH is ready \u00e9\n"
).encode()


@st.composite
def _api_frames(draw: st.DrawFn) -> bytes:
    """api replies in FreeSWITCH's spelling, and near misses of it."""
    body = draw(st.sampled_from([_API_BODY, b"", b"-ERR no such command\n", b"\xff\xfe bad"]))
    size = len(body)
    near = [str(size), f"0{size}", str(size + 3), str(max(size - 2, 0))]
    length = draw(st.sampled_from([*near, "", "-1", "99999999999", "999999999999999", "١٢"]))
    head = draw(
        st.sampled_from(
            [
                f"Content-Type: api/response\nContent-Length: {length}\n\n",
                f"Content-Type: api/response\nContent-Length: {length}\nX: y\n\n",
                f"Content-Type: api/response\nContent-Length:{length}\n\n",
                f"Content-Type: api/responsex\nContent-Length: {length}\n\n",
                f"Content-Length: {length}\nContent-Type: api/response\n\n",
                f"\nContent-Type: api/response\nContent-Length: {length}\n\n",
                f"Content-Type: api/response\nContent-Length: {length}\r\n\n",
            ]
        )
    )
    return head.encode("utf-8") + body


@settings(max_examples=400, deadline=None)
@given(
    frames=st.lists(st.one_of(_frames(), _api_frames()), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 2000), max_size=8),
    lazy=st.booleans(),
    max_frame_size=st.sampled_from([64, 100, 16 * 1024 * 1024]),
)
def test_fast_path_reads_any_stream_as_the_general_path_does(
    frames: list[bytes], cuts: list[int], lazy: bool, max_frame_size: int
) -> None:
    data = b"".join(frames)
    chunks = _cut(data, cuts)
    fast = _read(ESLParser(lazy_events=lazy, max_frame_size=max_frame_size), chunks)
    general = _read(_GeneralOnly(lazy_events=lazy, max_frame_size=max_frame_size), chunks)
    assert fast == general


@settings(max_examples=8, deadline=None)
@given(cuts=st.lists(st.integers(0, 200_000), max_size=12), lazy=st.booleans())
def test_fast_path_reads_every_real_capture_as_the_general_path_does(
    cuts: list[int], lazy: bool
) -> None:
    for name in received_capture_names():
        chunks = _cut(capture_bytes(name), cuts)
        assert _read(ESLParser(lazy_events=lazy), chunks) == _read(
            _GeneralOnly(lazy_events=lazy), chunks
        ), name


def test_an_event_frame_in_freeswitchs_spelling_takes_the_fast_path() -> None:
    parser = ESLParser(lazy_events=True)
    parser.receive_data(
        b"Content-Length: %d\nContent-Type: text/event-plain\n\n%s" % (len(_BODY), _BODY)
    )
    event = parser._event_frame(parser._buffer)
    assert isinstance(event, Event)
    assert event.name == "CHANNEL_STATE"
    assert parser.buffered == 0
    assert parser.next_event() is _NEED_DATA


def test_an_api_reply_in_freeswitchs_spelling_takes_the_fast_path() -> None:
    parser = ESLParser(lazy_events=True)
    parser.receive_data(
        b"Content-Type: api/response\nContent-Length: %d\n\n%s" % (len(_API_BODY), _API_BODY)
    )
    reply = parser._api_frame(parser._buffer)
    assert isinstance(reply, ApiResponse)
    assert reply.body == _API_BODY.decode()
    assert dict(reply.headers) == {
        "Content-Type": "api/response",
        "Content-Length": str(len(_API_BODY)),
    }
    assert parser.buffered == 0
    assert parser.next_event() is _NEED_DATA
