"""Reading and writing a trio socket stream's socket directly.

anyio's trio socket stream is a thin layer over a non-blocking socket: its
``send`` hands the bytes to the socket and keeps nothing back, its ``receive``
is one ``recv``. Each goes through several layers (anyio's, trio's socket
wrapper, a cancel-shielded checkpoint), which on a connection that does one
short command after another cost as much as the rest of the round trip. The
connection uses the socket itself where that is exactly equivalent.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

__all__ = ["DirectReceiver", "direct_socket"]


def direct_socket(stream: anyio.abc.ByteSendStream) -> socket.socket | None:
    """The socket under ``stream`` when writing to it directly is the same as ``stream.send``.

    Only anyio's trio socket streams qualify: their ``send`` hands the bytes straight
    to the non-blocking socket and keeps nothing back. Not asyncio's (its transport
    may still hold bytes of an earlier write) and not a wrapper such as TLS (it
    reports its transport's socket, but its bytes must be encrypted first).
    """
    if not isinstance(stream, anyio.abc.SocketStream):
        return None
    if type(stream).__module__ != "anyio._backends._trio":
        return None
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    return raw if isinstance(raw, socket.socket) else None


class DirectReceiver:
    """``stream.receive(size)`` for a stream :func:`direct_socket` accepted, with fewer layers.

    The same bytes and errors as the stream's own ``receive`` (end of stream is
    ``b""``), and like it a checkpoint every time: either it waits for the socket
    or it yields once before reading. After a short read the socket is most likely
    drained, so the next call waits for it first instead of trying a ``recv``
    that would only say "nothing yet".
    """

    def __init__(self, sock: socket.socket, size: int) -> None:
        import trio  # only trio's streams are read this way

        self._sock = sock
        self._size = size
        self._wait_readable: Callable[[socket.socket], Awaitable[None]] = (
            trio.lowlevel.wait_readable
        )
        self._checkpoint: Callable[[], Awaitable[None]] = trio.lowlevel.checkpoint
        self._trio_closed = trio.ClosedResourceError
        self._drained = False

    async def receive(self) -> bytes:
        sock = self._sock
        try:
            if self._drained:
                await self._wait_readable(sock)
            else:
                await self._checkpoint()
            while True:
                if sock.fileno() < 0:
                    raise anyio.ClosedResourceError
                try:
                    data = sock.recv(self._size)
                except BlockingIOError:
                    await self._wait_readable(sock)
                    continue
                self._drained = len(data) < self._size
                return data
        except self._trio_closed as exc:
            # Closed by another task while we waited (the connection's own aclose).
            raise anyio.ClosedResourceError from exc
