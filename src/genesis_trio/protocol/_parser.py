"""The sans-IO ESL parser: bytes in, typed messages out."""

from __future__ import annotations

from typing import Final

from .._exceptions import RemoteProtocolError
from ._codec import url_decode
from ._events import parse_header_lines
from ._headers import Headers, header_int
from ._messages import (
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    Event,
    EventFormat,
    Frame,
    LogData,
    Message,
    RudeRejection,
    decode_event,
)

__all__ = ["CONNECTION_CLOSED", "DEFAULT_MAX_FRAME_SIZE", "NEED_DATA", "ESLParser"]

DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Final = _Sentinel("NEED_DATA")
"""Returned by :meth:`ESLParser.next_event` when more bytes are needed."""

CONNECTION_CLOSED: Final = _Sentinel("CONNECTION_CLOSED")
"""Returned once the peer closed the stream cleanly between two frames."""

# An event frame as mod_event_socket writes it (see ESLParser._event_frame).
_EVENT_LENGTH: Final = b"Content-Length: "
_LENGTH_AT: Final = len(_EVENT_LENGTH)
_PLAIN_TYPE: Final = b"\nContent-Type: text/event-plain\n\n"
_JSON_TYPE: Final = b"\nContent-Type: text/event-json\n\n"
# An api reply as mod_event_socket writes it (see ESLParser._api_frame).
_API_START: Final = b"Content-Type: api/response\nContent-Length: "
_API_LENGTH_AT: Final = len(_API_START)
# An outbound connect reply: the channel data, Event-Name first (see _channel_data_frame).
_CHANNEL_DATA_START: Final = b"Event-Name: "
_COMMAND_REPLY_TYPE: Final = b"Content-Type: command/reply"
_ALL_BUT_LINE_BREAKS_AND_COLONS: Final = bytes(set(range(256)) - set(b"\n:"))

_EVENT_FORMATS: Final[dict[str, EventFormat]] = {
    "text/event-plain": "plain",
    "text/event-json": "json",
    "text/event-xml": "xml",
}


class ESLParser:
    """Turns the bytes of one ESL stream into messages.

    Feed bytes with :meth:`receive_data` (``b""`` means the peer closed), then
    call :meth:`next_event` until it returns :data:`NEED_DATA`. A frame split
    over many reads costs linear time: the search for the end of the header
    block resumes where the previous one stopped. ``max_frame_size`` bounds
    both an unfinished header block and a declared Content-Length, so a peer
    cannot make memory grow without limit. With ``lazy_events=True`` plain
    and json events are decoded on demand (see :class:`Event`); malformed
    event bodies then raise when read, not here.
    """

    __slots__ = ("_buffer", "_eof", "_lazy", "_pending", "_scan_from", "max_frame_size")

    def __init__(
        self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, lazy_events: bool = False
    ) -> None:
        if max_frame_size < 64:
            raise ValueError("max_frame_size must be at least 64 bytes")
        self.max_frame_size = max_frame_size
        # Lazy: plain/json events are decoded on first full access (see Event).
        self._lazy = lazy_events
        self._buffer = bytearray()
        self._scan_from = 0
        self._pending: tuple[Headers, int] | None = None
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into a message."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            if data:
                raise RuntimeError("receive_data() after end of stream")
            return
        if not data:
            self._eof = True
            return
        self._buffer += data

    def next_event(self) -> Message | _Sentinel:
        """The next complete message, :data:`NEED_DATA` or :data:`CONNECTION_CLOSED`."""
        buffer = self._buffer
        if self._pending is None:
            # Tolerate stray blank lines between frames.
            while buffer.startswith(b"\n"):  # (a slice would copy a byte per frame)
                del buffer[:1]
            if buffer.startswith(_EVENT_LENGTH):
                event = self._event_frame(buffer)
                if event is not None:
                    return event
            elif buffer.startswith(_API_START):
                response = self._api_frame(buffer)
                if response is not None:
                    return response
            end = buffer.find(b"\n\n", self._scan_from)
            if end < 0:
                size = len(buffer)
                if size > self.max_frame_size:
                    raise RemoteProtocolError(
                        f"header block exceeds max_frame_size ({self.max_frame_size} bytes)"
                    )
                # Resume one byte early: the "\n\n" may straddle two reads.
                self._scan_from = max(size - 1, 0)
                return self._at_end()
            if self._lazy and buffer.startswith(_CHANNEL_DATA_START):
                reply = self._channel_data_frame(buffer, end)
                if reply is not None:
                    return reply
            text = buffer[:end].decode("utf-8", "replace")
            headers = parse_header_lines(text, decode=False)
            del buffer[: end + 2]
            self._scan_from = 0
            length_text = headers.get("Content-Length")
            if length_text is None:
                if self._lazy and "Event-Name" in headers:
                    return _classify_channel_data(headers, text)
                return _classify(headers, None, self._lazy)
            length = header_int(length_text)
            if length is None:
                raise RemoteProtocolError(f"malformed Content-Length: {length_text[:20]!r}")
            if length > self.max_frame_size:
                raise RemoteProtocolError(
                    f"Content-Length {length} exceeds max_frame_size ({self.max_frame_size})"
                )
            self._pending = (headers, length)
        headers, length = self._pending
        if len(buffer) < length:
            return self._at_end()
        body = bytes(buffer[:length])
        del buffer[:length]
        self._pending = None
        return _classify(headers, body, self._lazy)

    def _event_frame(self, buffer: bytearray) -> Message | None:
        """A whole event frame in FreeSWITCH's own spelling, or None: let the general path parse.

        mod_event_socket writes every event as exactly ``Content-Length: N``, then
        ``Content-Type: text/event-plain`` (or json) and a blank line. Recognising
        those bytes skips building a header block per event; any other spelling,
        an unfinished frame or a size over the limit takes the general path, which
        reads it (or refuses it) the same way.
        """
        line_end = buffer.find(b"\n", _LENGTH_AT, _LENGTH_AT + 12)
        if line_end < 0:
            return None
        digits = buffer[_LENGTH_AT:line_end]
        if not digits.isdigit():
            return None
        if buffer.startswith(_PLAIN_TYPE, line_end):
            event_format: EventFormat = "plain"
            start = line_end + len(_PLAIN_TYPE)
        elif buffer.startswith(_JSON_TYPE, line_end):
            event_format = "json"
            start = line_end + len(_JSON_TYPE)
        else:
            return None
        length = int(digits)
        end = start + length
        if length > self.max_frame_size or len(buffer) < end:
            return None
        body = bytes(buffer[start:end])
        del buffer[:end]
        self._scan_from = 0
        if self._lazy:
            return Event._lazy(body, event_format)
        return decode_event(body, event_format)

    def _api_frame(self, buffer: bytearray) -> ApiResponse | None:
        """A whole api reply in FreeSWITCH's own spelling, or None: let the general path parse.

        mod_event_socket answers every ``api`` with exactly ``Content-Type:
        api/response``, ``Content-Length: N`` and a blank line. On a connection that
        runs one ``api`` after another, recognising those bytes saves building a
        header block per reply; anything else (another spelling, an unfinished
        frame, a size over the limit) takes the general path, which reads it (or
        refuses it) the same way.
        """
        line_end = buffer.find(b"\n", _API_LENGTH_AT, _API_LENGTH_AT + 12)
        if line_end < 0:
            return None
        digits = buffer[_API_LENGTH_AT:line_end]
        # isdigit on bytes is ASCII only, as header_int requires.
        if not digits.isdigit() or not buffer.startswith(b"\n\n", line_end):
            return None
        length = int(digits)
        start = line_end + 2
        end = start + length
        if length > self.max_frame_size or len(buffer) < end:
            return None
        body = buffer[start:end].decode("utf-8", "replace")
        del buffer[:end]
        self._scan_from = 0
        headers = Headers._adopt(
            {"Content-Type": "api/response", "Content-Length": digits.decode()}, None
        )
        return ApiResponse(headers, body)

    def _channel_data_frame(self, buffer: bytearray, end: int) -> CommandReply | None:
        """An outbound ``connect`` reply (its header block is the channel's ~100 headers,
        ``Event-Name`` first), kept undecoded without splitting it into a header dict
        first; None: let the general path read it.

        Taken only when the general path would read the block as that same reply:
        no ``Content-Length`` (a body would follow), every line a well-formed
        header (a malformed one must raise here, as the general path does), and
        ``command/reply`` as its first ``Content-Type``.
        """
        block = bytes(buffer[:end])
        if b"\nContent-Length:" in block or b"\n:" in block:
            return None
        # Every line holds a colon: with all but line breaks and colons deleted (in C),
        # no line break may be first, last or next to another.
        marks = block.translate(None, _ALL_BUT_LINE_BREAKS_AND_COLONS)
        if marks.endswith(b"\n") or b"\n\n" in marks:
            return None
        at = block.find(b"\nContent-Type:") + 1
        line_end = block.find(b"\n", at)
        if not at or block[at : end if line_end < 0 else line_end] != _COMMAND_REPLY_TYPE:
            return None
        del buffer[: end + 2]
        self._scan_from = 0
        return CommandReply._channel_data(Event._lazy(block, "plain"))

    def _at_end(self) -> _Sentinel:
        if not self._eof:
            return NEED_DATA
        if self._buffer or self._pending is not None:
            raise RemoteProtocolError("connection closed in the middle of a frame")
        return CONNECTION_CLOSED


def _text(body: bytes | None) -> str:
    return "" if body is None else body.decode("utf-8", "replace")


def _url_decoded(headers: Headers) -> Headers:
    """Every value URL-decoded, in one pass over them all when a separator is safe."""
    pairs = list(headers.multi_items())
    joined = _SEPARATOR.join(value for _, value in pairs)
    if "%" not in joined:
        return headers
    # Values are joined with NUL, which no value holds and no escape in them makes: the
    # decoded text splits back exactly (an escape is "%" and two hex digits, and a partial
    # UTF-8 sequence before a NUL is replaced just as at the end of its own value).
    if _SEPARATOR not in joined and "%00" not in joined:
        values = url_decode(joined).split(_SEPARATOR)
        if len(values) == len(pairs):
            return Headers(zip([name for name, _ in pairs], values, strict=True))
    return Headers((name, url_decode(value)) for name, value in pairs)


_SEPARATOR = "\x00"


def _classify_channel_data(headers: Headers, text: str) -> Message:
    """A frame whose header block is an event's (an outbound ``connect`` reply), lazily.

    Its ~100 channel variables stay undecoded, as every event a connection
    reads does: a session reads a handful of them, and holds them for the
    whole call.
    """
    if headers.get("Content-Type") != "command/reply":
        return _classify(headers, None, True)
    return CommandReply._channel_data(Event._lazy(text.encode(), "plain"))


def _classify(headers: Headers, body: bytes | None, lazy: bool = False) -> Message:
    content_type = headers.get("Content-Type")
    event_format = _EVENT_FORMATS.get(content_type or "")
    if event_format is not None:
        if lazy and event_format != "xml":
            return Event._lazy(body or b"", event_format)
        return decode_event(body or b"", event_format)
    if content_type == "command/reply":
        if "Event-Name" in headers:
            # An outbound `connect` reply: the header block is the channel data,
            # URL-encoded like a plain event.
            decoded = _url_decoded(headers)
            return CommandReply(decoded, Event(decoded))
        return CommandReply(headers)
    if content_type == "api/response":
        return ApiResponse(headers, _text(body))
    if content_type == "auth/request":
        return AuthRequest()
    if content_type == "log/data":
        return LogData(headers, _text(body))
    if content_type == "text/disconnect-notice":
        return DisconnectNotice(headers, _text(body))
    if content_type == "text/rude-rejection":
        return RudeRejection(headers, _text(body))
    return Frame(headers, body)
