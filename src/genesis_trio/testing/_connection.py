"""One inbound client connection: the command loop and the event writer.

As in mod_event_socket, a connection handles one command at a time and
answers it before anything else is written: events and log lines fired while
a command runs (even a slow ``api``) wait in the connection's queue and are
written after the reply. ``bgapi`` jobs run in the switch, not here.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Final

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..protocol import Event, RemoteProtocolError
from ._command_reader import Command, CommandReader
from ._commands import handle_command
from ._replies import AUTH_REQUEST, command_reply
from ._subscriptions import Subscription
from ._switch import Switch
from ._wire import OutgoingEvent

__all__ = ["OUTBOX_LIMIT", "Connection"]

# mod_event_socket's MAX_QUEUE_LEN: past it, events for a slow client are lost.
OUTBOX_LIMIT: Final = 100_000
# Events written with one send: fewer syscalls when a burst is queued.
_BATCH_ITEMS: Final = 256

_TRANSPORT_ERRORS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
)


class _EventItem:
    __slots__ = ("epoch", "outgoing")

    def __init__(self, outgoing: OutgoingEvent, epoch: int) -> None:
        self.outgoing = outgoing
        self.epoch = epoch


class _LogItem:
    __slots__ = ("epoch", "frame")

    def __init__(self, frame: bytes, epoch: int) -> None:
        self.frame = frame
        self.epoch = epoch


class _BlobItem:
    """Event frames already encoded and joined (the benchmark source's bursts)."""

    __slots__ = ("data", "epoch")

    def __init__(self, data: bytes, epoch: int) -> None:
        self.data = data
        self.epoch = epoch


class _RawItem:
    """A frame written in order with the events (disconnect notices), maybe the last one."""

    __slots__ = ("close_after", "data")

    def __init__(self, data: bytes, close_after: bool) -> None:
        self.data = data
        self.close_after = close_after


_Item = _EventItem | _LogItem | _BlobItem | _RawItem


def _closes(item: _Item) -> bool:
    return isinstance(item, _RawItem) and item.close_after


# Bursts queued but not yet written, per connection: bounds a blast's memory.
_BLOB_CREDITS: Final = 4


class Connection:
    """A client of the fake switch, from the greeting to the socket close."""

    # What the switch says first: inbound clients are asked to authenticate.
    greeting: bytes = AUTH_REQUEST

    def __init__(self, host: Switch, stream: anyio.abc.SocketStream) -> None:
        self._host = host
        self._stream = stream
        self.subscription = Subscription()
        self.log_level: int | None = None
        self.authenticated = False
        self.lost_events = 0
        self._lock = anyio.Lock()
        self._event_epoch = 0
        self._log_epoch = 0
        self._scope = anyio.CancelScope()
        self._reset_on_close = False
        self._blob_credits = anyio.Semaphore(_BLOB_CREDITS)
        self._closed = anyio.Event()
        send, receive = anyio.create_memory_object_stream[_Item](OUTBOX_LIMIT)
        self._outbox: MemoryObjectSendStream[_Item] = send
        self._inbox: MemoryObjectReceiveStream[_Item] = receive

    # ------------------------------------------------------------ lifetime

    async def run(self) -> None:
        try:
            with self._scope:
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(self._writer)
                    try:
                        if self.greeting:
                            await self._stream.send(self.greeting)
                        await self._command_loop()
                    except (*_TRANSPORT_ERRORS, RemoteProtocolError):
                        # A lost client, or one that sent an oversized command: drop it.
                        pass
                    task_group.cancel_scope.cancel()
        finally:
            self._host._connection_closed(self)
            self._outbox.close()
            self._inbox.close()
            if self._reset_on_close:
                _arm_reset(self._stream)
            await anyio.aclose_forcefully(self._stream)
            self._closed.set()

    async def abort(self, *, reset: bool = False) -> None:
        """Drop the connection without a goodbye (and with a TCP RST if ``reset``)."""
        self._reset_on_close = reset
        self._scope.cancel()
        await self._closed.wait()

    # -------------------------------------------------------------- events

    def offer_event(self, outgoing: OutgoingEvent) -> None:
        """Queue an event this connection subscribed to; count it lost if the queue is full."""
        try:
            self._outbox.send_nowait(_EventItem(outgoing, self._event_epoch))
        except anyio.WouldBlock:
            self.lost_events += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def put_frames(self, data: bytes) -> None:
        """Queue encoded event frames, waiting while earlier bursts are unwritten."""
        await self._blob_credits.acquire()
        try:
            await self._outbox.send(_BlobItem(data, self._event_epoch))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._blob_credits.release()

    def offer_frame(self, data: bytes, *, close_after: bool = False) -> None:
        """Queue a frame behind the events already queued; ``close_after`` ends the connection
        once it is written."""
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._outbox.send_nowait(_RawItem(data, close_after))

    def offer_log(self, level: int, frame: bytes) -> None:
        if self.log_level is None or level > self.log_level:
            return
        with contextlib.suppress(
            anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError
        ):
            self._outbox.send_nowait(_LogItem(frame, self._log_epoch))

    def wants(self, event: Event) -> bool:
        return self.authenticated and self.subscription.wants(event)

    async def _writer(self) -> None:
        inbox = self._inbox
        try:
            async for first in inbox:
                batch = [first]
                # Nothing is written after a closing frame.
                while len(batch) < _BATCH_ITEMS and not _closes(batch[-1]):
                    try:
                        batch.append(inbox.receive_nowait())
                    except anyio.WouldBlock:
                        break
                async with self._lock:
                    data = b"".join(self._render(item) for item in batch)
                    if data:
                        await self._stream.send(data)
                for item in batch:
                    if isinstance(item, _BlobItem):
                        self._blob_credits.release()
                if _closes(batch[-1]):
                    self._scope.cancel()
                    return
        except _TRANSPORT_ERRORS:
            self._scope.cancel()

    def _render(self, item: _Item) -> bytes:
        if isinstance(item, _EventItem):
            if item.epoch != self._event_epoch:
                return b""
            return item.outgoing.frame(self.subscription.format)
        if isinstance(item, _BlobItem):
            return item.data if item.epoch == self._event_epoch else b""
        if isinstance(item, _RawItem):
            return item.data
        return item.frame if item.epoch == self._log_epoch else b""

    # ------------------------------------------------------------ commands

    async def _command_loop(self) -> None:
        reader = CommandReader()
        while True:
            command = reader.next_command()
            while command is None:
                reader.feed(await self._stream.receive())
                command = reader.next_command()
            self._host._record_command(command.line)
            async with self._lock:
                keep_open = await self._handle(command)
            if not keep_open:
                return

    async def _reply(self, text: str, *extra: tuple[str, str]) -> None:
        await self._stream.send(command_reply(text, *extra))

    async def _handle(self, command: Command) -> bool:
        was_authenticated = self.authenticated
        data, keep_open = await handle_command(self._host, self, command)
        await self._stream.send(data)
        if self.authenticated and not was_authenticated:
            self._host._connection_authenticated()
        return keep_open

    def drop_queued_events(self) -> None:
        self._event_epoch += 1

    def drop_queued_logs(self) -> None:
        self._log_epoch += 1


def _arm_reset(stream: anyio.abc.SocketStream) -> None:
    """SO_LINGER with a zero timeout: closing sends a RST instead of a FIN."""
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
