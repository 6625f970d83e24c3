"""A frame trickling in one byte per read costs linear, not quadratic, scanning.

Measured without clocks: the parser's buffer is swapped for a bytearray that
adds up how many bytes each ``find`` call is asked to search. That is the
parser's only scan over buffered data; a parser that restarted its search for
the blank line at the start of the buffer on every read would be asked to
search about n²/2 bytes for an n-byte header block.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, SupportsIndex

from genesis_trio.protocol import NEED_DATA, CommandReply, ESLParser

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

MIB = 1024 * 1024


class CountingBuffer(bytearray):
    """A bytearray that counts the bytes its ``find`` calls may examine."""

    searched = 0
    calls = 0

    def find(
        self,
        sub: ReadableBuffer | SupportsIndex,
        start: SupportsIndex | None = None,
        end: SupportsIndex | None = None,
        /,
    ) -> int:
        first = 0 if start is None else start.__index__()
        last = len(self) if end is None else end.__index__()
        self.calls += 1
        self.searched += max(0, last - first)
        return super().find(sub, start, end)


def _big_header_frame(size: int) -> bytes:
    """A command/reply whose header block (like an outbound connect reply's
    channel data) is ``size`` bytes long, terminator included."""
    head = b"Content-Type: command/reply\nReply-Text: +OK\nEvent-Name: CHANNEL_DATA\n"
    lines = []
    filled = len(head) + 1
    index = 0
    while filled < size:
        line = f"variable_x{index}: {'v' * 40}\n".encode()
        lines.append(line)
        filled += len(line)
        index += 1
    frame = head + b"".join(lines) + b"\n"
    return frame


def _feed_one_byte_at_a_time(
    frame: bytes, *, forget_progress: bool = False
) -> tuple[CountingBuffer, CommandReply]:
    parser = ESLParser(max_frame_size=4 * MIB)
    buffer = CountingBuffer()
    parser._buffer = buffer  # instrumentation only; the parser never replaces it
    for offset in range(len(frame) - 1):
        parser.receive_data(frame[offset : offset + 1])
        if forget_progress:
            parser._scan_from = 0  # what a parser without resumable search does
        assert parser.next_event() is NEED_DATA
    parser.receive_data(frame[-1:])
    reply = parser.next_event()
    assert isinstance(reply, CommandReply)
    assert parser._buffer is buffer
    return buffer, reply


@cache
def _measured(size: int) -> tuple[int, CountingBuffer, CommandReply]:
    frame = _big_header_frame(size)
    return (len(frame), *_feed_one_byte_at_a_time(frame))


def test_one_mib_header_block_fed_byte_by_byte_is_scanned_linearly() -> None:
    frame_size, buffer, reply = _measured(MIB)
    assert reply.event is not None
    assert len(reply.event) > MIB // 60
    assert frame_size >= MIB
    assert buffer.calls == frame_size  # one search per read
    # Each search covers at most the byte before the new one and the new one.
    assert buffer.searched <= 2 * frame_size


def test_scanning_work_grows_in_proportion_to_the_frame() -> None:
    _, half, _ = _measured(MIB // 2)
    _, whole, _ = _measured(MIB)
    assert 1.9 <= whole.searched / half.searched <= 2.1


def test_the_measure_would_catch_a_quadratic_rescan() -> None:
    # The same instrument on a parser made to restart every search: the count
    # explodes, so the linear bound above is a real check.
    size = 16 * 1024
    frame = _big_header_frame(size)
    rescanning, _ = _feed_one_byte_at_a_time(frame, forget_progress=True)
    resuming, _ = _feed_one_byte_at_a_time(frame)
    assert rescanning.searched >= len(frame) ** 2 // 2 - len(frame)
    assert rescanning.searched > 100 * resuming.searched
