"""Reading client commands the way mod_event_socket's ``read_packet`` does.

A command is ``line\\n(Header: value\\n)*\\n``; a ``Content-Length`` header is
followed by that many bytes of body. This is the client-to-switch direction,
which :class:`genesis_trio.protocol.ESLParser` (switch-to-client) does not parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import RemoteProtocolError

__all__ = ["MAX_COMMAND_SIZE", "Command", "CommandReader"]

# FreeSWITCH stops reading a header block at 10 MiB; a body is bounded the same way here.
MAX_COMMAND_SIZE = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Command:
    """One client command: its first line, header lines in order, optional body."""

    line: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of a header, matched case-insensitively as FreeSWITCH does."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


class CommandReader:
    """Sans-IO: feed bytes with :meth:`feed`, then take commands with :meth:`next_command`."""

    __slots__ = ("_buffer", "_pending")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending: tuple[str, tuple[tuple[str, str], ...], int] | None = None

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_command(self) -> Command | None:
        """The next complete command, or ``None`` until more bytes arrive."""
        buffer = self._buffer
        if self._pending is None:
            # Like read_packet, blank lines (and CRs) before a command are skipped.
            start = 0
            while start < len(buffer) and buffer[start] in b"\r\n":
                start += 1
            if start:
                del buffer[:start]
            end = _find_block_end(buffer)
            if end is None:
                if len(buffer) > MAX_COMMAND_SIZE:
                    raise RemoteProtocolError("command header block too large")
                return None
            block_end, consumed = end
            text = bytes(buffer[:block_end]).decode("utf-8", "replace").replace("\r", "")
            del buffer[:consumed]
            line, *rest = text.split("\n")
            headers = tuple(_header(raw) for raw in rest if raw and ":" in raw)
            length = _content_length(headers)
            if length == 0:
                return Command(line, headers)
            self._pending = (line, headers, length)
        line, headers, length = self._pending
        if len(buffer) < length:
            return None
        body = bytes(buffer[:length]).decode("utf-8", "replace")
        del buffer[:length]
        self._pending = None
        return Command(line, headers, body)


def _find_block_end(buffer: bytearray) -> tuple[int, int] | None:
    """End of the header block: two newlines, with any CRs between them ignored."""
    if b"\r" not in buffer:
        found = buffer.find(b"\n\n")
        return None if found < 0 else (found, found + 2)
    newlines = 0
    for index, byte in enumerate(buffer):
        if byte == 0x0A:
            newlines += 1
            if newlines == 2:
                return index, index + 1
        elif byte != 0x0D:
            newlines = 0
    return None


def _header(raw: str) -> tuple[str, str]:
    name, _, value = raw.partition(":")
    return name, value.lstrip(" ")


def _content_length(headers: tuple[tuple[str, str], ...]) -> int:
    for name, value in headers:
        if name.lower() == "content-length":
            text = value.strip()
            if not text.isdigit():
                return 0
            length = int(text)
            if length > MAX_COMMAND_SIZE:
                raise RemoteProtocolError("command body too large")
            return length
    return 0
