"""Writing whole frames, as the switch side does (used by the fake switch)."""

from __future__ import annotations

from collections.abc import Iterable

from .._exceptions import LocalProtocolError
from ._messages import Event, EventFormat, encode_event_body

__all__ = ["encode_event_frame", "encode_frame"]

_CONTENT_TYPES: dict[EventFormat, str] = {
    "plain": "text/event-plain",
    "json": "text/event-json",
    "xml": "text/event-xml",
}


def encode_frame(headers: Iterable[tuple[str, str]], body: bytes | None = None) -> bytes:
    """A frame with headers in the given order; ``Content-Length`` is appended
    for a body unless the caller placed it."""
    lines: list[str] = []
    has_length = False
    for name, value in headers:
        if "\n" in name or "\n" in value or "\r" in name or "\r" in value:
            raise LocalProtocolError(f"newline in frame header {name!r}")
        has_length = has_length or name == "Content-Length"
        lines.append(f"{name}: {value}\n")
    if body is not None and not has_length:
        lines.append(f"Content-Length: {len(body)}\n")
    return "".join(lines).encode("utf-8") + b"\n" + (body or b"")


def encode_event_frame(event: Event, event_format: EventFormat) -> bytes:
    """An event frame exactly as FreeSWITCH frames it (Content-Length first)."""
    body = encode_event_body(event, event_format)
    head = f"Content-Length: {len(body)}\nContent-Type: {_CONTENT_TYPES[event_format]}\n\n"
    return head.encode("ascii") + body
