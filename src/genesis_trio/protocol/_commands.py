"""Builders that turn ESL commands into bytes, refusing anything injectable.

Every builder checks its inputs before producing a byte: a newline,
carriage return or NUL in a command, header name or header value raises
:class:`~genesis_trio.LocalProtocolError`, so text from the outside world
(a caller ID, DTMF, a SIP header) can never smuggle a second command into the
stream nor be cut short. Bodies are length-delimited and may contain anything
but NUL. What FreeSWITCH parses inside a command (originate strings, filter
values, application arguments) is encoded by :mod:`._encoding`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from .._exceptions import LocalProtocolError
from . import _encoding as encoding
from ._messages import EventFormat

__all__ = [
    "api",
    "auth",
    "bgapi",
    "connect",
    "divert_events",
    "event",
    "exit",
    "filter",
    "filter_delete",
    "filter_delete_all",
    "linger",
    "log",
    "myevents",
    "nixevent",
    "noevents",
    "nolinger",
    "nolog",
    "raw",
    "resume",
    "sendevent",
    "sendmsg",
    "userauth",
]

_FORMATS = ("plain", "json", "xml")
HeaderItems = Mapping[str, str] | Iterable[tuple[str, str]]


#: The events mod_event_socket's ``myevents`` turns on (others: ask with ``event``).
MYEVENTS_NAMES = frozenset(
    {
        "CHANNEL_ANSWER",
        "CHANNEL_APPLICATION",
        "CHANNEL_BRIDGE",
        "CHANNEL_CREATE",
        "CHANNEL_DATA",
        "CHANNEL_DESTROY",
        "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_ORIGINATE",
        "CHANNEL_UUID",
        "CHANNEL_OUTGOING",
        "CHANNEL_PARK",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_STATE",
        "CHANNEL_UNBRIDGE",
        "CHANNEL_UNPARK",
        "DETECTED_SPEECH",
        "DTMF",
        "NOTALK",
        "TALK",
    }
)


def _check(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise LocalProtocolError(f"{what} contains a newline; refusing to send it")
    return encoding.check_text(text, what)


def _check_header(name: str, value: str) -> None:
    _check(name, "header name")
    if not name or ":" in name or name != name.strip():
        raise LocalProtocolError(f"invalid header name {name!r}")
    _check(value, f"value of header {name!r}")
    # mod_event_socket drops the spaces after the colon; switch_event_add_header
    # turns "ARRAY::a|:b" into an array.
    if value.startswith((" ", "\t")):
        raise LocalProtocolError(f"value of header {name!r} starts with whitespace, which is lost")
    if value.startswith("ARRAY::"):
        raise LocalProtocolError(f"value of header {name!r} starts with ARRAY::, read as an array")


def _line(command: str) -> bytes:
    _check(command, "command")
    if not command.strip():
        raise LocalProtocolError("empty command")
    return command.encode("utf-8") + b"\n\n"


def _with_headers(first_line: str, headers: HeaderItems, body: bytes | str | None) -> bytes:
    _check(first_line, "command")
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
    lines = [first_line]
    for name, value in pairs:
        _check_header(name, value)
        if name.lower() == "content-length":
            raise LocalProtocolError("Content-Length is computed from the body; do not pass it")
        lines.append(f"{name}: {value}")
    if isinstance(body, str):
        encoding.check_text(body, "body")
    data = body.encode("utf-8") if isinstance(body, str) else body
    if data is not None and b"\x00" in data:
        raise LocalProtocolError("body contains a NUL byte, where FreeSWITCH would cut it")
    if data is not None:
        lines.append(f"Content-Length: {len(data)}")
    head = ("\n".join(lines) + "\n\n").encode("utf-8")
    return head if data is None else head + data


def _format(event_format: str) -> str:
    if event_format not in _FORMATS:
        raise LocalProtocolError(f"unknown event format {event_format!r}")
    return event_format


def _names(names: Iterable[str]) -> str:
    items = [_check(name, "event name") for name in names]
    if any(not n or " " in n for n in items):
        raise LocalProtocolError("event names must be non-empty words")
    return encoding.event_names(items)


def raw(command: str) -> bytes:
    """Any single-line command, checked for newlines."""
    return _line(command)


def auth(password: str) -> bytes:
    return _line(f"auth {_check(password, 'password')}")


def userauth(user: str, password: str) -> bytes:
    return _line(f"userauth {_check(user, 'user')}:{_check(password, 'password')}")


def api(command: str) -> bytes:
    return _line(f"api {command}")


def bgapi(command: str, job_uuid: str | None = None) -> bytes:
    if job_uuid is None:
        return _line(f"bgapi {command}")
    return _with_headers(f"bgapi {command}", [("Job-UUID", job_uuid)], None)


def event(*names: str, event_format: EventFormat = "plain") -> bytes:
    """``event <format> <names...>``; no names subscribes to ``ALL``."""
    return _line(f"event {_format(event_format)} {_names(names) or 'ALL'}")


def nixevent(*names: str) -> bytes:
    if not names:
        raise LocalProtocolError("nixevent needs at least one event name")
    return _line(f"nixevent {_names(names)}")


def noevents() -> bytes:
    return b"noevents\n\n"


def myevents(uuid: str | None = None, event_format: EventFormat = "plain") -> bytes:
    """``myevents``: outbound mode takes no uuid; inbound mode names the channel."""
    if uuid is None:
        return _line(f"myevents {_format(event_format)}")
    return _line(f"myevents {_check(uuid, 'uuid')} {_format(event_format)}")


def filter(header: str, value: str) -> bytes:
    """``filter <header> <value>``; the value is compared literally (see ``filter_value``)."""
    header = encoding.filter_header(header)
    return _line(f"filter {header} {encoding.filter_value(value)}")


def filter_delete(header: str, value: str | None = None) -> bytes:
    """``filter delete <header> [<value>]``, the value encoded as :func:`filter` sent it."""
    header = encoding.filter_header(header)
    if value is None:
        return _line(f"filter delete {header}")
    return _line(f"filter delete {header} {encoding.filter_value(value)}")


def filter_delete_all() -> bytes:
    return b"filter delete all\n\n"


def divert_events(on: bool) -> bytes:
    return _line(f"divert_events {'on' if on else 'off'}")


def linger(seconds: int | None = None) -> bytes:
    if seconds is None:
        return b"linger\n\n"
    if seconds < 0:
        raise LocalProtocolError("linger seconds must be >= 0")
    return _line(f"linger {int(seconds)}")


def nolinger() -> bytes:
    return b"nolinger\n\n"


LogLevel = Literal[0, 1, 2, 3, 4, 5, 6, 7]


def log(level: int | str = 7) -> bytes:
    return _line(f"log {_check(str(level), 'log level')}")


def nolog() -> bytes:
    return b"nolog\n\n"


def sendevent(name: str, headers: HeaderItems = (), body: bytes | str | None = None) -> bytes:
    _names([name])
    return _with_headers(f"sendevent {name}", headers, body)


def sendmsg(
    headers: HeaderItems, *, uuid: str | None = None, body: bytes | str | None = None
) -> bytes:
    """``sendmsg [uuid]`` with ``call-command`` and friends as headers."""
    first = "sendmsg" if uuid is None else f"sendmsg {_check(uuid, 'uuid')}"
    return _with_headers(first, headers, body)


def exit() -> bytes:
    return b"exit\n\n"


def connect() -> bytes:
    return b"connect\n\n"


def resume() -> bytes:
    return b"resume\n\n"
