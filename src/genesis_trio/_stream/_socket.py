"""Reading and writing a trio socket stream's socket directly.

anyio's trio socket stream is a thin layer over a non-blocking socket: its
``send`` hands the bytes to the socket and keeps nothing back, its ``receive``
is one ``recv``. Each goes through several layers (anyio's, trio's socket
wrapper, a cancel-shielded checkpoint), which on a connection that does one
short command after another cost as much as the rest of the round trip. The
connection uses the socket itself where that is exactly equivalent.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
import anyio.abc

__all__ = ["DirectReceiver", "Notice", "TrioPath", "direct_socket", "trio_path"]


class Notice(Protocol):
    """What the outbox needs of a reply's notice: :class:`anyio.Event`'s ``set``/``wait``."""

    def set(self) -> None: ...

    async def wait(self) -> None: ...


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


class TrioPath:
    """The outbox's per-command primitives, straight from trio (see :func:`trio_path`).

    ``notice()`` makes what stands for an :class:`anyio.Event` that one task waits
    on; ``check_not_cancelled()`` is :func:`genesis_trio._stream._outbox.check_not_cancelled`.
    """

    def __init__(
        self,
        notice: Callable[[], Notice],
        check_not_cancelled: Callable[[], Awaitable[None]],
    ) -> None:
        self.notice = notice
        self.check_not_cancelled = check_not_cancelled


@functools.cache
def trio_path() -> TrioPath:
    """What a connection on trio uses per command instead of anyio's layers over trio.

    anyio's ``Event()`` looks up the running backend every time it is made and
    wraps a trio ``Event`` (itself a parking lot with an ordered dict); its
    ``checkpoint_if_cancelled``, ``current_effective_deadline`` and
    ``current_time`` look the backend up once each. A command on a connection that
    does one after the other paid for all of them on every round trip. Made on
    first use, so a program on asyncio never imports trio for it.
    """
    import trio

    checkpoint = trio.lowlevel.checkpoint
    checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
    current_task = trio.lowlevel.current_task
    reschedule = trio.lowlevel.reschedule
    wait_task_rescheduled = trio.lowlevel.wait_task_rescheduled
    succeeded = trio.lowlevel.Abort.SUCCEEDED
    effective_deadline = trio.current_effective_deadline
    current_time = trio.current_time

    class TrioNotice:
        """A one-shot flag one task waits on: ``wait`` behaves as trio's ``Event.wait``.

        A checkpoint either way: set already, it yields once (and raises a pending
        cancellation); otherwise the task sleeps until ``set`` (cancellable until
        then: a ``set`` that comes first wins, as with trio's parking lot).
        """

        __slots__ = ("_flag", "_task")

        def __init__(self) -> None:
            self._flag = False
            self._task: trio.lowlevel.Task | None = None

        def is_set(self) -> bool:
            return self._flag

        def set(self) -> None:
            if self._flag:
                return
            self._flag = True
            task = self._task
            if task is not None:
                self._task = None
                reschedule(task)

        async def wait(self) -> None:
            if self._flag:
                await checkpoint()
                return
            if self._task is not None:
                raise RuntimeError("another task is already waiting for this notice")
            self._task = current_task()

            def abort(_: object) -> trio.lowlevel.Abort:
                self._task = None
                return succeeded

            await wait_task_rescheduled(abort)

    async def check_not_cancelled() -> None:
        await checkpoint_if_cancelled()
        if effective_deadline() <= current_time():
            await checkpoint()

    return TrioPath(TrioNotice, check_not_cancelled)
