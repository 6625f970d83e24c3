"""ESLConnection: an ESL byte stream owned inside a task group.

One reader task parses frames and routes them (:mod:`._routes`); it never
waits for a consumer, so replies, job results and channel state always get
through. Commands go through the outbox (:mod:`._outbox`), one writer at a
time, replies matched in write order. An observer (:mod:`._observer`) sees
commands, events and the connection's end.
"""

# A command's ``timeout=`` is the deadline of its own cancel scope (an
# OperationTimeout when it fires), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

import math
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Generic, TypeVarTuple

import anyio
import anyio.abc

from .._dispatch import EventHandler, HandlerPool, HandlerRegistration
from .._exceptions import ConnectionLost, ProtocolError
from .._outcome import OperationTimeout
from .._subscription import Overflow, Subscription
from .._util import LazyEvent, describe_error, logger, redact_command
from ..protocol import (
    CONNECTION_CLOSED,
    NEED_DATA,
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    ESLParser,
    Event,
    LogData,
    RudeRejection,
)
from ..protocol import commands as cmd
from ._observer import ConnectionObserver
from ._outbox import Outbox, QueuedCommand, Reply, check_not_cancelled
from ._routes import ALL, PendingJob, Routes
from ._socket import DirectReceiver

if sys.version_info >= (3, 13):
    from typing import TypeVar
else:
    from typing_extensions import TypeVar

__all__ = ["ESLConnection"]

_TaskArgs = TypeVarTuple("_TaskArgs")
# The observer's own type, so that an owner that plugged in a particular
# observer (tracing's ConnectionTelemetry) gets it back from ``telemetry``.
_Observer = TypeVar(
    "_Observer", bound=ConnectionObserver, default=ConnectionObserver, covariant=True
)


class ESLConnection(Generic[_Observer]):
    """An ESL connection over any AnyIO byte stream.

    Start it with :meth:`start` inside a task group that the owner (Inbound,
    an outbound Session) controls; the reader and every handler worker live in
    that task group and end with it.
    """

    # A class default: only a reconnecting Inbound sets one (for its lasting log subscriptions).
    _log_hook: Callable[[LogData], None] | None = None

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        max_frame_size: int | None = None,
        write_timeout: float | None = 30.0,
        receive_size: int = 65536,
        observer: _Observer | None = None,
    ) -> None:
        if write_timeout is not None and write_timeout <= 0:
            raise ValueError("write_timeout must be positive (or None)")
        self._stream = stream
        self._parser = (
            ESLParser(lazy_events=True)
            if max_frame_size is None
            else ESLParser(max_frame_size=max_frame_size, lazy_events=True)
        )
        self._receive_size = receive_size
        self._outbox = Outbox(stream, write_timeout=write_timeout, on_broken=self._finish)
        self._routes = Routes()
        self._handler_pool: HandlerPool | None = None
        self._notice_listeners: list[Callable[[DisconnectNotice], None]] = []
        self._event_hooks: list[Callable[[Event], None]] = []
        self._task_group: anyio.abc.TaskGroup | None = None
        # Events made when first awaited (an outbound session never waits for these).
        self._auth_requested = LazyEvent()
        self.closed = anyio.Event()
        self.lost_reason: BaseException | None = None
        # True once we said ``exit``: only then does the end count as clean.
        self._closing = False
        self._reader_done = LazyEvent()
        self._observer = observer
        if observer is not None:
            self._event_hooks.append(observer.event_received)
            observer.connection_opened(self)

    @property
    def auth_requested(self) -> anyio.Event:
        """Set once FreeSWITCH asked an inbound connection to authenticate."""
        return self._auth_requested.event

    @property
    def direct_socket(self) -> socket.socket | None:
        """The socket under the stream when it is written directly (anyio's trio sockets)."""
        return self._outbox.direct_socket

    @property
    def telemetry(self) -> _Observer | None:
        """The observer the owner plugged in (tracing's ConnectionTelemetry when an
        OpenTelemetry SDK records), or None."""
        return self._observer

    # --- lifecycle --------------------------------------------------------
    def start(self, task_group: anyio.abc.TaskGroup) -> None:
        self._task_group = task_group
        task_group.start_soon(self._reader, name="esl-reader")

    async def run(
        self, task_group: anyio.abc.TaskGroup, started: Callable[[], object] | None = None
    ) -> None:
        """:meth:`start` for an owner with a task of its own for the reader: read in the
        calling task until the connection ends; ``task_group`` hosts the handler workers
        and :meth:`start_soon` tasks, ``started()`` runs once they can be started. One
        task fewer per connection (an outbound session)."""
        self._task_group = task_group
        if started is not None:
            started()
        await self._reader()

    @property
    def is_open(self) -> bool:
        return not self.closed.is_set()

    @property
    def commands_waiting(self) -> int:
        """Commands written (or queued to be) whose reply has not come yet."""
        return self._outbox.waiting

    @property
    def events_buffered(self) -> int:
        """Events routed to subscriptions and handlers and not taken by them yet."""
        return self._routes.buffered

    async def aclose(self, *, send_exit: bool = True, grace: float = 2.0) -> None:
        """Say goodbye (``exit``) if possible, then close the stream.

        Shielded with its own deadline: it runs during cancellation too.
        """
        with anyio.CancelScope(shield=True):
            if send_exit and self.is_open and not self._closing:
                self._closing = True
                # The grace bounds only the goodbye: the stream is closed below in any case.
                with anyio.move_on_after(grace):
                    try:
                        await self.send_command(cmd.exit(), "exit")
                        await self._reader_done.event.wait()
                    except ConnectionLost:
                        pass
            self._closing = True
            self._finish(ConnectionLost("connection closed"), clean=True)
            await self._stream.aclose()

    # --- writing ----------------------------------------------------------
    async def send_command(
        self, data: bytes, label: str | None = None, *, timeout: float | None = None
    ) -> Reply:
        """Write one command and wait for its reply (command/reply or api/response).

        ``timeout`` bounds the whole exchange and raises :class:`OperationTimeout`
        (a :class:`TimeoutError`); None waits for as long as the caller's scope
        allows. A command is never written from a scope that is already cancelled.
        """
        label = label if label is not None else redact_command(data.decode("utf-8", "replace"))
        if timeout is None or timeout == math.inf:
            send = self._outbox.send
        else:
            if timeout < 0:
                raise ValueError("timeout must not be negative")
            limit = timeout
            outbox = self._outbox

            async def send(data: bytes, label: str) -> Reply:
                with anyio.move_on_after(limit) as scope:
                    return await outbox.send(data, label)
                assert scope.cancelled_caught
                raise OperationTimeout(label, limit)

        if self._observer is not None:
            return await self._observer.observe_command(send, data, label)
        return await send(data, label)

    async def send_pipelined(
        self,
        commands: Sequence[tuple[bytes, str]],
        *,
        timeout: float | None = None,
        on_reply: Callable[[int, Reply], object] | None = None,
    ) -> list[Reply]:
        """Write several commands in one go and wait for their replies, in order.

        The peer reads them back to back, without a round trip in between.
        ``on_reply(index, reply)`` runs as each reply arrives, before the next
        one is awaited (an outbound session binds the call after ``connect``
        this way); an exception from it ends the wait there, and the replies
        still to come are absorbed by their slots. Each command is observed as
        :meth:`send_command` observes it. ``timeout`` bounds the whole exchange.
        Nothing is written from a scope already cancelled.
        """
        if timeout is None or timeout == math.inf:
            return await self._send_pipelined(commands, on_reply)
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        with anyio.move_on_after(timeout) as scope:
            return await self._send_pipelined(commands, on_reply)
        assert scope.cancelled_caught
        raise OperationTimeout(" + ".join(label for _, label in commands), timeout)

    async def _send_pipelined(
        self,
        commands: Sequence[tuple[bytes, str]],
        on_reply: Callable[[int, Reply], object] | None,
    ) -> list[Reply]:
        await check_not_cancelled()
        outbox = self._outbox
        queued = [outbox.queue(data, label) for data, label in commands]
        replies: list[Reply] = []
        try:
            for index, ((data, label), outgoing) in enumerate(zip(commands, queued, strict=True)):

                async def complete(
                    _data: bytes, _label: str, outgoing: QueuedCommand = outgoing
                ) -> Reply:
                    return await outbox.complete(outgoing)

                if self._observer is not None:
                    reply = await self._observer.observe_command(complete, data, label)
                else:
                    reply = await complete(data, label)
                replies.append(reply)
                if on_reply is not None:
                    on_reply(index, reply)
        finally:
            for outgoing in queued:
                outbox.withdraw(outgoing)
        return replies

    async def send_raw(self, data: bytes) -> None:
        """Write bytes that expect no reply (rare: e.g. a fake peer's frames)."""
        await self._outbox.send_raw(data)

    def expect_job(self, job_uuid: str) -> PendingJob:
        """Register interest in a BACKGROUND_JOB before the bgapi is written."""
        return self._routes.expect_job(job_uuid)

    def forget_job(self, job_uuid: str) -> None:
        self._routes.forget_job(job_uuid)

    async def wait_job(self, job_uuid: str, job: PendingJob) -> Event:
        return await self._routes.wait_job(job_uuid, job)

    # --- subscriptions ----------------------------------------------------
    def subscribe(
        self,
        keys: Iterable[str] = (ALL,),
        *,
        uuid: str | None = None,
        matches: Callable[[Event], bool] | None = None,
        max_buffer: int = 10_000,
        overflow: Overflow = Overflow.ERROR,
    ) -> Subscription[Event]:
        """A local subscription; keys are event names, CUSTOM subclasses or ``ALL``.

        With ``uuid`` it receives only that channel's events (O(1) routing).
        """
        return self._routes.subscribe(
            keys, uuid=uuid, matches=matches, max_buffer=max_buffer, overflow=overflow
        )

    def subscribe_logs(self, *, max_buffer: int = 10_000) -> Subscription[LogData]:
        return self._routes.subscribe_logs(max_buffer=max_buffer)

    def forward_logs(self, hook: Callable[[LogData], None]) -> None:
        """Also hand every log line to ``hook``, after this connection's own subscribers
        (a reconnecting client's subscriptions that outlive connections)."""
        self._log_hook = hook

    def add_event_hook(self, hook: Callable[[Event], None]) -> None:
        """Call ``hook`` synchronously for every event, before routing (telemetry)."""
        self._event_hooks.append(hook)

    def add_notice_listener(self, listener: Callable[[DisconnectNotice], None]) -> None:
        self._notice_listeners.append(listener)

    def run_handler(
        self,
        keys: Iterable[str],
        handler: EventHandler,
        *,
        uuid: str | None = None,
        concurrent: bool = False,
        max_concurrent: int = 1000,
        max_buffer: int = 10_000,
        overflow: Overflow = Overflow.ERROR,
    ) -> HandlerRegistration:
        """Run ``handler`` for matching events on the connection's worker pool.

        Sequential by default (the handler sees its events one at a time, in
        order); with ``concurrent=True`` up to ``max_concurrent`` calls overlap.
        Up to ``max_buffer`` events wait for the handler; past that the
        registration applies ``overflow`` (the reader never waits for it). A
        handler that raises is logged and the connection carries on. Once the
        connection is closed, events not yet handed to the handler are dropped.
        """
        if self._task_group is None:
            raise RuntimeError("the connection is not started")
        if self._handler_pool is None:
            self._handler_pool = HandlerPool(self._task_group)
        if self._observer is not None:
            # The handler's own spans then belong to the event's call trace.
            handler = self._observer.wrap_handler(handler)
        return self._routes.add_handler(
            keys,
            self._handler_pool,
            handler,
            uuid=uuid,
            max_concurrent=max_concurrent if concurrent else 1,
            max_buffer=max_buffer,
            overflow=overflow,
        )

    def start_soon(
        self,
        func: Callable[[*_TaskArgs], Coroutine[Any, Any, object]],
        *args: *_TaskArgs,
        name: object = None,
    ) -> None:
        """Run a task owned by this connection: it ends when the connection's owner ends."""
        if self._task_group is None:
            raise RuntimeError("the connection is not started")
        self._task_group.start_soon(func, *args, name=name)

    # --- reading ----------------------------------------------------------
    async def _reader(self) -> None:
        parser = self._parser
        stream = self._stream
        dispatch = self._dispatch
        error: BaseException | None = None
        sock = self._outbox.direct_socket  # found once per connection: it is not free
        direct = DirectReceiver(sock, self._receive_size) if sock is not None else None
        try:
            # After a goodbye the reader keeps reading until the peer closes,
            # but delivers nothing more: everything pending has already failed.
            while True:
                try:
                    if direct is not None:
                        data = await direct.receive()
                    else:
                        data = await stream.receive(self._receive_size)
                except anyio.EndOfStream:
                    data = b""
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    error = ConnectionLost(f"connection broke: {describe_error(exc)}")
                    break
                parser.receive_data(data)
                # The parser copied it: do not hold the chunk (up to receive_size) while
                # waiting for the next one, which on a quiet call can be minutes.
                data = b""
                while True:
                    message = parser.next_event()
                    if message is NEED_DATA:
                        break
                    if message is CONNECTION_CLOSED:
                        error = ConnectionLost("connection closed by peer")
                        return
                    if not self.closed.is_set():
                        # Synchronous: the reader never waits for a consumer.
                        dispatch(message)
        except ProtocolError as exc:
            error = ConnectionLost(f"protocol error from peer: {exc}")
            logger.error("ESL protocol error, closing the connection: %s", exc)
        finally:
            self._reader_done.set()
            self._finish(error or ConnectionLost("connection closed"), clean=self._closing)
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()

    def _dispatch(self, message: object) -> None:
        if type(message) is Event:
            observer = self._observer
            started = time.perf_counter() if observer is not None else 0.0
            for hook in self._event_hooks:
                hook(message)
            self._routes.route(message)
            if observer is not None:
                observer.event_routed(message, time.perf_counter() - started)
            return
        if type(message) is CommandReply or type(message) is ApiResponse:
            if not self._outbox.reply_arrived(message):
                logger.warning("reply with no command waiting for it: %r", message)
            return
        if type(message) is DisconnectNotice:
            for listener in self._notice_listeners:
                listener(message)
            if not message.linger:
                # FreeSWITCH sends nothing after this notice and closes the socket:
                # whatever is still pending will never be answered.
                if self._closing:
                    self._finish(ConnectionLost("connection closed"), clean=True)
                else:
                    said = message.body.strip().splitlines()
                    self._finish(
                        ConnectionLost(
                            "FreeSWITCH ended the connection"
                            + (f" ({said[0].strip()})" if said else "")
                        )
                    )
            return
        if type(message) is LogData:
            self._routes.deliver_log(message)
            if self._log_hook is not None:
                self._log_hook(message)
            return
        if type(message) is AuthRequest:
            self._auth_requested.set()
            return
        if type(message) is RudeRejection:
            self._finish(ConnectionLost(f"rejected by FreeSWITCH: {message.body.strip()}"))
            return
        logger.debug("ignoring frame %r", message)

    def _finish(self, reason: BaseException, *, clean: bool = False) -> None:
        """Fail everything that waits on this connection, once."""
        if self.closed.is_set():
            return
        self.lost_reason = reason
        self.closed.set()
        if self._observer is not None:
            self._observer.connection_closed(clean=clean)
        self._outbox.fail(reason)
        if self._handler_pool is not None:
            # Before the routes below: no handler starts on a closed connection.
            self._handler_pool.close()
        self._routes.close(reason, clean=clean)
