"""Event frames as FreeSWITCH writes them, encoded once per format and shared."""

from __future__ import annotations

from ..protocol import Event, EventFormat, encode_event_frame, url_encode

__all__ = ["OutgoingEvent", "event_frame"]


def event_frame(event: Event, event_format: EventFormat) -> bytes:
    """The frame of ``event`` in ``event_format``.

    An event that carries its own ``Content-Length`` header (``sendevent``
    with a body) keeps it in the plain header block, and FreeSWITCH appends
    its own after it, as ``inbound_sendevent_custom`` shows; the protocol's
    encoder drops such a header, so that one case is written here.
    """
    if event_format == "plain" and event.body is not None and "Content-Length" in event:
        body = event.body.encode("utf-8")
        lines = [f"{name}: {url_encode(value)}\n" for name, value in event.headers.multi_items()]
        lines.append(f"Content-Length: {len(body)}\n\n")
        payload = "".join(lines).encode("utf-8") + body
        head = f"Content-Length: {len(payload)}\nContent-Type: text/event-plain\n\n"
        return head.encode("ascii") + payload
    return encode_event_frame(event, event_format)


class OutgoingEvent:
    """An event on its way to many connections: each format is encoded once."""

    __slots__ = ("_frames", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._frames: dict[EventFormat, bytes] = {}

    def frame(self, event_format: EventFormat) -> bytes:
        frame = self._frames.get(event_format)
        if frame is None:
            frame = self._frames[event_format] = event_frame(self.event, event_format)
        return frame
