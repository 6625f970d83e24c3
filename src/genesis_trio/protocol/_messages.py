"""What the parser yields: one object per ESL frame, typed by Content-Type."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import FrozenInstanceError, dataclass
from typing import TypeVar, overload

from ._events import EventFormat, decode_event_parts, encode_event_parts
from ._headers import Headers, header_int
from ._lookup import (
    UNSURE,
    _plain_needles,
    _Unsure,
    lookup_json,
    lookup_plain,
    plain_needles,
    plain_value_at,
)

_T = TypeVar("_T")

__all__ = [
    "ApiResponse",
    "AuthRequest",
    "CommandReply",
    "DisconnectNotice",
    "Event",
    "EventFormat",
    "Frame",
    "LogData",
    "Message",
    "RudeRejection",
    "decode_event",
    "encode_event_body",
]


class Event(Mapping[str, str]):
    """A FreeSWITCH event: headers (read-only, multi-valued) and an optional body.

    It is a read-only mapping of header name to first value, so
    ``event["Unique-ID"]`` and ``event.get("variable_sip_call_id")`` work.
    The same FreeSWITCH event gives an equal :class:`Event` whether it arrived
    as plain, json or xml.

    Events read from a connection are decoded lazily: looking up one header
    reads it straight from the received bytes, and the whole event is decoded
    only when all of it is needed (iteration, ``headers``, ``body``, equality).
    A malformed event therefore raises :class:`RemoteProtocolError` at that
    point rather than when it was received.
    """

    __slots__ = ("_body", "_clean_to", "_format", "_head_end", "_headers", "_looked_up", "_raw")

    _headers: Headers | None
    _body: str | None
    _raw: bytes | None
    _format: EventFormat | None
    # A plain event's header block is raw[:_head_end]; -1 until a lookup needed to know.
    # Finding the blank line that ends it means scanning the whole event (no body:
    # the blank line is its last two bytes), while the headers programs read come
    # first: a lookup only checks that no blank line precedes what it found, and
    # raw[:_clean_to] is the part already known to hold none.
    _head_end: int
    _clean_to: int
    # Headers already read from the undecoded bytes (routing, the channel's state and
    # the waiters' predicates read Event-Name and a few others several times each).
    _looked_up: dict[str, str | None] | None

    def __init__(
        self,
        headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: str | None = None,
    ) -> None:
        self._headers = headers if isinstance(headers, Headers) else Headers(headers)
        self._body = body
        self._raw = None
        self._format = None
        self._head_end = 0
        self._clean_to = 0
        self._looked_up = None

    @classmethod
    def _lazy(cls, raw: bytes, event_format: EventFormat) -> Event:
        """An event decoded on demand from its body bytes (plain or json)."""
        self = cls.__new__(cls)
        self._headers = None
        self._body = None
        self._raw = raw
        self._format = event_format
        self._looked_up = None
        self._head_end = -1 if event_format == "plain" else 0
        self._clean_to = 0
        return self

    def _decode(self) -> Headers:
        assert self._raw is not None
        assert self._format is not None
        headers, self._body = decode_event_parts(self._raw, self._format)
        self._looked_up = None
        self._headers = headers
        self._raw = None
        return headers

    @property
    def headers(self) -> Headers:
        headers = self._headers
        return headers if headers is not None else self._decode()

    @property
    def body(self) -> str | None:
        if self._headers is None:
            self._decode()
        return self._body

    # Mapping protocol, delegated to the headers.
    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers._first)

    def __len__(self) -> int:
        return len(self.headers._first)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self.get(name) is not None

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    @overload
    def get(self, name: str, default: _T, /) -> str | _T: ...
    def get(self, name: str, default: object = None, /) -> object:
        headers = self._headers
        if headers is not None:
            return headers._first.get(name, default)
        looked_up = self._looked_up
        if looked_up is None:
            looked_up = self._looked_up = {}
        elif name in looked_up:
            found = looked_up[name]
            return default if found is None else found
        if self._format == "plain":
            value = self._lookup_plain(name)
        else:
            assert self._raw is not None
            value = lookup_json(self._raw, name)
        if value is None or isinstance(value, str):
            looked_up[name] = value
            return default if value is None else value
        return self._decode()._first.get(name, default)  # UNSURE: let the full decode say

    def _lookup_plain(self, name: str) -> str | _Unsure | None:
        """:func:`lookup_plain` on the header block, found only as far as the lookup needs."""
        head_end = self._head_end
        if head_end >= 0:
            assert self._raw is not None
            return lookup_plain(self._raw, head_end, name)
        needles = _plain_needles.get(name) or plain_needles(name)
        if not needles:
            return UNSURE
        raw = self._raw
        assert raw is not None
        first, later = needles
        if raw.startswith(first):
            start = len(first)
        else:
            found = raw.find(later)
            if found < 0:
                return None  # nowhere at all, so not in the header block either
            # In the header block unless a blank line starts before it.
            if found >= self._clean_to:
                blank = raw.find(b"\n\n", max(self._clean_to - 1, 0), found + 1)
                if blank >= 0:
                    self._head_end = blank
                    return None  # (it was in the body; the first match is the only candidate)
                self._clean_to = found + 1
            start = found + len(later)
        return plain_value_at(raw, start, len(raw))

    def get_all(self, name: str) -> list[str]:
        return self.headers.get_all(name)

    # Typed helpers for the headers nearly every program reads.
    @property
    def name(self) -> str | None:
        return self.get("Event-Name")

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        return self.get("Unique-ID")

    @property
    def call_uuid(self) -> str | None:
        return self.get("Channel-Call-UUID")

    @property
    def job_uuid(self) -> str | None:
        return self.get("Job-UUID")

    @property
    def application(self) -> str | None:
        return self.get("Application")

    @property
    def application_uuid(self) -> str | None:
        return self.get("Application-UUID")

    @property
    def channel_state(self) -> str | None:
        return self.get("Channel-State")

    @property
    def answer_state(self) -> str | None:
        return self.get("Answer-State")

    @property
    def hangup_cause(self) -> str | None:
        return self.get("Hangup-Cause")

    @property
    def sequence(self) -> int | None:
        return header_int(self.get("Event-Sequence"))

    def variable(self, name: str) -> str | None:
        """A channel variable carried in the event (``variable_<name>``)."""
        return self.get("variable_" + name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.body == other.body and self.headers == other.headers

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        label = self.name or "?"
        if self.subclass:
            label += f"::{self.subclass}"
        uuid = self.unique_id
        return f"<Event {label}{' ' + uuid if uuid else ''}>"


def decode_event(data: bytes, event_format: EventFormat) -> Event:
    """Decode an event body of the given format."""
    headers, body = decode_event_parts(data, event_format)
    return Event(headers, body)


def encode_event_body(event: Event, event_format: EventFormat) -> bytes:
    """Encode an event the way FreeSWITCH writes it in the given format."""
    return encode_event_parts(event.headers, event.body, event_format)


@dataclass(frozen=True, slots=True)
class Frame:
    """A raw frame: the outer header block and the Content-Length body, if any.

    Frames of a content type the parser does not know are yielded as-is.
    """

    headers: Headers
    body: bytes | None

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """The ``auth/request`` greeting of an inbound connection."""


class CommandReply:
    """A ``command/reply``. ``event`` holds the channel data of an outbound ``connect``.

    Immutable, compared by value. The reply to an outbound ``connect`` carries
    the call's ~100 channel variables in its header block: a connection's
    parser leaves them undecoded in ``event`` (as it does every event), and
    ``headers`` decodes them only when read.
    """

    __slots__ = ("_event", "_headers")
    __match_args__ = ("headers", "event")

    _headers: Headers | None
    _event: Event | None

    def __init__(self, headers: Headers, event: Event | None = None) -> None:
        object.__setattr__(self, "_headers", headers)
        object.__setattr__(self, "_event", event)

    @classmethod
    def _channel_data(cls, event: Event) -> CommandReply:
        """A ``connect`` reply whose headers are ``event``'s, decoded when read."""
        self = cls.__new__(cls)
        object.__setattr__(self, "_headers", None)
        object.__setattr__(self, "_event", event)
        return self

    @property
    def headers(self) -> Headers:
        headers = self._headers
        if headers is None:
            assert self._event is not None
            return self._event.headers
        return headers

    @property
    def event(self) -> Event | None:
        return self._event

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not CommandReply:
            return NotImplemented
        return self.headers == other.headers and self.event == other.event

    __hash__ = None  # type: ignore[assignment]  # as before: Headers is unhashable

    def __repr__(self) -> str:
        return f"CommandReply(headers={self.headers!r}, event={self.event!r})"

    def __reduce__(self) -> tuple[type[CommandReply], tuple[Headers, Event | None]]:
        return CommandReply, (self.headers, self.event)

    def _get(self, name: str) -> str | None:
        # A connect reply's single headers are read from its undecoded event.
        headers = self._headers
        if headers is None:
            assert self._event is not None
            return self._event.get(name)
        return headers.get(name)

    @property
    def reply_text(self) -> str:
        return (self._get("Reply-Text") or "").rstrip("\n")

    @property
    def ok(self) -> bool:
        return self.reply_text.startswith("+OK")

    @property
    def job_uuid(self) -> str | None:
        return self._get("Job-UUID")


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """An ``api/response``: the body is the command's output."""

    headers: Headers
    body: str

    @property
    def ok(self) -> bool:
        return not self.body.startswith("-ERR")


@dataclass(frozen=True, slots=True)
class LogData:
    """A ``log/data`` frame: headers (Log-Level, Log-File, ...) and the log line."""

    headers: Headers
    body: str

    @property
    def level(self) -> int | None:
        return header_int(self.headers.get("Log-Level"))


@dataclass(frozen=True, slots=True)
class DisconnectNotice:
    """``text/disconnect-notice``; ``disposition`` is ``disconnect`` or ``linger``."""

    headers: Headers
    body: str

    @property
    def disposition(self) -> str | None:
        return self.headers.get("Content-Disposition")

    @property
    def linger(self) -> bool:
        return self.disposition == "linger"


@dataclass(frozen=True, slots=True)
class RudeRejection:
    """``text/rude-rejection``: the switch refused the connection (ACL)."""

    headers: Headers
    body: str


Message = (
    AuthRequest
    | CommandReply
    | ApiResponse
    | Event
    | LogData
    | DisconnectNotice
    | RudeRejection
    | Frame
)
