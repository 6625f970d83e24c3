"""Access to the raw FreeSWITCH captures and a whole-stream parse helper."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from esl_captures import CAPTURES_DIR, MESSAGE_TYPES, read_capture
from genesis_trio.protocol import CONNECTION_CLOSED, NEED_DATA, ESLParser, Event, Message

__all__ = [
    "CAPTURES_DIR",
    "MESSAGE_TYPES",
    "capture_bytes",
    "capture_events",
    "capture_messages",
    "parse_chunks",
    "received_capture_names",
    "sent_bytes",
]


def received_capture_names() -> list[str]:
    """Names of the captures of bytes received from FreeSWITCH (``NAME.bin``)."""
    if not CAPTURES_DIR.is_dir():
        return []
    return sorted(
        path.name.removesuffix(".bin")
        for path in CAPTURES_DIR.glob("*.bin")
        if not path.name.endswith(".sent.bin")
    )


@cache
def capture_bytes(name: str) -> bytes:
    return read_capture(f"{name}.bin")


def sent_bytes(name: str) -> bytes:
    """What the capture script sent on that socket (``NAME.sent.bin``)."""
    return read_capture(f"{name}.sent.bin")


def parse_chunks(chunks: Iterable[bytes]) -> list[Message]:
    """Every message of a stream fed in the given chunks, then EOF.

    Fails the test unless the stream ends cleanly (CONNECTION_CLOSED with
    nothing buffered), so callers get "zero bytes left over" for free.
    """
    parser = ESLParser()
    messages: list[Message] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        while (result := parser.next_event()) is not NEED_DATA:
            assert result is not CONNECTION_CLOSED, "CONNECTION_CLOSED before end of stream"
            assert isinstance(result, MESSAGE_TYPES)
            messages.append(result)
    parser.receive_data(b"")
    while (result := parser.next_event()) is not CONNECTION_CLOSED:
        assert result is not NEED_DATA, "NEED_DATA after end of stream"
        assert isinstance(result, MESSAGE_TYPES)
        messages.append(result)
    assert parser.buffered == 0
    # CONNECTION_CLOSED is sticky: asking again must not invent a frame.
    assert parser.next_event() is CONNECTION_CLOSED
    return messages


@cache
def capture_messages(name: str) -> tuple[Message, ...]:
    return tuple(parse_chunks([capture_bytes(name)]))


def capture_events(name: str) -> list[Event]:
    return [message for message in capture_messages(name) if isinstance(message, Event)]
