"""The one async adapter: an ESL byte stream owned inside a task group.

One reader task parses frames and routes them; it never waits for a
consumer (every subscription and handler buffer applies its own overflow
policy at once), so replies, job results and channel state always get
through. One writer at a time keeps command bytes whole; replies are matched
to commands in the order the commands were written, so a caller cancelled
after writing leaves a slot that silently absorbs its late reply instead of
stealing the next command's.
"""

# A command's ``timeout=`` is the deadline of its own cancel scope (an
# OperationTimeout when it fires), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

import errno
import math
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVarTuple

import anyio
import anyio.abc
import anyio.lowlevel

from ._dispatch import EventHandler, HandlerPool, HandlerRegistration
from ._exceptions import CommandStage, ConnectionLost, ProtocolError
from ._outcome import OperationTimeout
from ._subscription import Overflow, Subscription
from ._util import logger, redact_command
from .protocol import (
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
from .protocol import commands as cmd

if TYPE_CHECKING:
    from .tracing import ConnectionTelemetry

__all__ = ["ESLConnection", "EventHandler", "Reply"]

_TaskArgs = TypeVarTuple("_TaskArgs")

Reply = CommandReply | ApiResponse


class _Route(Protocol):
    """What the reader delivers events to: a Subscription or a HandlerRegistration."""

    matches: Callable[[Event], bool] | None

    def deliver(self, event: Event, /) -> None: ...
    def fail(self, error: BaseException, /) -> None: ...
    def end(self) -> None: ...


ALL = "ALL"


@dataclass(slots=True, eq=False)
class _PendingReply:
    label: str
    done: anyio.Event = field(default_factory=anyio.Event)
    # Set before the bytes go to the transport: from then on the peer may
    # have them, so a loss reports SENT, never NOT_SENT.
    written: bool = False
    reply: Reply | None = None
    error: BaseException | None = None


@dataclass(slots=True, eq=False)
class _Outgoing:
    """Bytes waiting in the outbox; ``taken`` once a writer has them."""

    data: bytes
    pending: _PendingReply | None
    taken: bool = False


@dataclass(slots=True, eq=False)
class _PendingJob:
    done: anyio.Event = field(default_factory=anyio.Event)
    event: Event | None = None
    error: BaseException | None = None


class ESLConnection:
    """An ESL connection over any AnyIO byte stream.

    Start it with :meth:`start` inside a task group that the owner (Inbound,
    an outbound Session) controls; the reader and every handler worker live in
    that task group and end with it.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        max_frame_size: int | None = None,
        write_timeout: float | None = 30.0,
        receive_size: int = 65536,
    ) -> None:
        if write_timeout is not None and write_timeout <= 0:
            raise ValueError("write_timeout must be positive (or None)")
        self._stream = stream
        self._parser = (
            ESLParser(lazy_events=True)
            if max_frame_size is None
            else ESLParser(max_frame_size=max_frame_size, lazy_events=True)
        )
        self._write_timeout = write_timeout
        self._receive_size = receive_size
        self._outbox: list[_Outgoing] = []
        self._writing = False
        self._write_done: anyio.Event | None = None
        self._pending: deque[_PendingReply] = deque()
        self._jobs: dict[str, _PendingJob] = {}
        self._routes: dict[str, list[_Route]] = {}
        self._uuid_routes: dict[str, list[_Route]] = {}
        self._handler_pool: HandlerPool | None = None
        self._log_subscribers: list[Subscription[LogData]] = []
        self._notice_listeners: list[Callable[[DisconnectNotice], None]] = []
        self._event_hooks: list[Callable[[Event], None]] = []
        self._task_group: anyio.abc.TaskGroup | None = None
        self.auth_requested = anyio.Event()
        self.closed = anyio.Event()
        self.lost_reason: BaseException | None = None
        # True once we said ``exit``: only then does the end count as clean.
        self._closing = False
        self._reader_done = anyio.Event()
        # Set by tracing.ConnectionTelemetry.attach only when an SDK records.
        self.telemetry: ConnectionTelemetry | None = None

    # --- lifecycle --------------------------------------------------------
    def start(self, task_group: anyio.abc.TaskGroup) -> None:
        self._task_group = task_group
        task_group.start_soon(self._reader, name="esl-reader")

    @property
    def is_open(self) -> bool:
        return not self.closed.is_set()

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
                        await self._reader_done.wait()
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
            send = self._send_command
        else:
            if timeout < 0:
                raise ValueError("timeout must not be negative")
            limit = timeout

            async def send(data: bytes, label: str) -> Reply:
                with anyio.move_on_after(limit) as scope:
                    return await self._send_command(data, label)
                assert scope.cancelled_caught
                raise OperationTimeout(label, limit)

        if self.telemetry is not None:
            return await self.telemetry.traced_command(send, data, label)
        return await send(data, label)

    async def _send_command(self, data: bytes, label: str) -> Reply:
        await _check_not_cancelled()
        if not self.is_open:
            raise self._not_sent(label)
        pending = _PendingReply(label)
        # Queued in the same step as its reply slot, so bytes and slots keep one order.
        self._pending.append(pending)
        outgoing = _Outgoing(data, pending)
        self._outbox.append(outgoing)
        await self._write_until_sent(outgoing)
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.reply is not None
        return pending.reply

    def _not_sent(self, what: str) -> ConnectionLost:
        reason = self.lost_reason
        return ConnectionLost(
            f"cannot send {what!r}" + (f": {reason}" if reason is not None else ""),
            stage=CommandStage.NOT_SENT,
        )

    async def send_raw(self, data: bytes) -> None:
        """Write bytes that expect no reply (rare: e.g. a fake peer's frames)."""
        await _check_not_cancelled()
        if not self.is_open:
            raise self._not_sent("raw bytes")
        outgoing = _Outgoing(data, None)
        self._outbox.append(outgoing)
        await self._write_until_sent(outgoing)
        if not self.is_open:
            raise self.lost_reason or ConnectionLost("connection closed")

    async def _write_until_sent(self, outgoing: _Outgoing) -> None:
        """Write our command, batching whatever else is queued with it.

        Whoever finds no write in progress becomes the writer and writes
        everything queued in one go; the others wait, and one of them writes
        what was queued meanwhile. A caller cancelled before its bytes were
        taken withdraws its command: nothing was written. A write cancelled or
        timed out half-way leaves the stream in an unknown state: the
        connection is failed (everything pending gets :class:`ConnectionLost`)
        and the cancellation goes on at once.
        """
        while self.is_open and not outgoing.taken:
            if not self._writing:
                await self._write_batch()
                continue
            done = self._write_done
            if done is None:
                done = self._write_done = anyio.Event()
            try:
                await done.wait()
            except BaseException:
                if not outgoing.taken and self.is_open:
                    # Never handed to the transport: withdraw it, nothing was sent.
                    self._outbox.remove(outgoing)
                    if outgoing.pending is not None:
                        self._pending.remove(outgoing.pending)
                raise

    async def _write_batch(self) -> None:
        self._writing = True
        batch, self._outbox = self._outbox, []
        data = batch[0].data if len(batch) == 1 else b"".join(o.data for o in batch)
        label = "raw"
        for outgoing in reversed(batch):
            outgoing.taken = True
            if outgoing.pending is not None:
                outgoing.pending.written = True
                label = outgoing.pending.label
        try:
            with anyio.move_on_after(
                math.inf if self._write_timeout is None else self._write_timeout
            ) as scope:
                await self._stream.send(data)
            if scope.cancelled_caught:
                self._finish(
                    ConnectionLost(
                        f"write of {label!r} timed out after {self._write_timeout:g} s: "
                        "the peer stopped reading"
                    )
                )
        except anyio.get_cancelled_exc_class():
            self._finish(
                ConnectionLost(f"write of {label!r} was cancelled half-way: the stream is unusable")
            )
            raise
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._finish(ConnectionLost(f"write of {label!r} failed: {describe_error(exc)}"))
        finally:
            self._writing = False
            self._wake_writers()

    def _wake_writers(self) -> None:
        done = self._write_done
        if done is not None:
            self._write_done = None
            done.set()

    def expect_job(self, job_uuid: str) -> _PendingJob:
        """Register interest in a BACKGROUND_JOB before the bgapi is written."""
        job = self._jobs[job_uuid] = _PendingJob()
        return job

    def forget_job(self, job_uuid: str) -> None:
        self._jobs.pop(job_uuid, None)

    async def wait_job(self, job_uuid: str, job: _PendingJob) -> Event:
        try:
            await job.done.wait()
        finally:
            self._jobs.pop(job_uuid, None)
        if job.error is not None:
            raise job.error
        assert job.event is not None
        return job.event

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
        key_list, table = self._route_keys(keys, uuid)
        sub: Subscription[Event] = Subscription(
            matches,
            max_buffer=max_buffer,
            overflow=overflow,
            on_close=lambda route: self._unregister(route, key_list, table),
        )
        for key in key_list:
            table.setdefault(key, []).append(sub)
        if not self.is_open:
            sub.fail(self.lost_reason or ConnectionLost("connection closed"))
        return sub

    def _route_keys(
        self, keys: Iterable[str], uuid: str | None
    ) -> tuple[list[str], dict[str, list[_Route]]]:
        if uuid is not None:
            return [uuid], self._uuid_routes
        return list(keys) or [ALL], self._routes

    @staticmethod
    def _unregister(route: _Route, keys: list[str], table: dict[str, list[_Route]]) -> None:
        for key in keys:
            routes = table.get(key)
            if routes is not None and route in routes:
                routes.remove(route)
                if not routes:
                    del table[key]

    def subscribe_logs(self, *, max_buffer: int = 10_000) -> Subscription[LogData]:
        def unregister(sub: Subscription[LogData]) -> None:
            if sub in self._log_subscribers:
                self._log_subscribers.remove(sub)

        sub: Subscription[LogData] = Subscription(max_buffer=max_buffer, on_close=unregister)
        self._log_subscribers.append(sub)
        return sub

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
        if self.telemetry is not None:
            # The handler's own spans then belong to the event's call trace.
            handler = self.telemetry.wrap_handler(handler)
        key_list, table = self._route_keys(keys, uuid)
        registration = HandlerRegistration(
            self._handler_pool,
            handler,
            max_concurrent=max_concurrent if concurrent else 1,
            max_buffer=max_buffer,
            overflow=overflow,
            on_close=lambda route: self._unregister(route, key_list, table),
        )
        for key in key_list:
            table.setdefault(key, []).append(registration)
        return registration

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
        try:
            # After a goodbye the reader keeps reading until the peer closes,
            # but delivers nothing more: everything pending has already failed.
            while True:
                try:
                    data = await stream.receive(self._receive_size)
                except anyio.EndOfStream:
                    data = b""
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    error = ConnectionLost(f"connection broke: {describe_error(exc)}")
                    break
                parser.receive_data(data)
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
            self._route_event(message)
            return
        if type(message) is CommandReply or type(message) is ApiResponse:
            if self._pending:
                pending = self._pending.popleft()
                pending.reply = message
                pending.done.set()
            else:
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
            for log_sub in self._log_subscribers:
                log_sub.deliver(message)
            return
        if type(message) is AuthRequest:
            self.auth_requested.set()
            return
        if type(message) is RudeRejection:
            self._finish(ConnectionLost(f"rejected by FreeSWITCH: {message.body.strip()}"))
            return
        logger.debug("ignoring frame %r", message)

    def _route_event(self, event: Event) -> None:
        for hook in self._event_hooks:
            hook(event)
        # Each lookup reads one header from the undecoded event (see Event).
        name = event.get("Event-Name")
        if name == "BACKGROUND_JOB" and self._jobs:
            job_uuid = event.get("Job-UUID")
            job = self._jobs.pop(job_uuid, None) if job_uuid is not None else None
            if job is not None:
                job.event = event
                job.done.set()
        routes = self._routes
        if routes:
            # As in FreeSWITCH's own subscriptions, only CUSTOM events route by subclass.
            subclass = event.get("Event-Subclass") if name == "CUSTOM" else None
            for key in (name, subclass, ALL):
                subs = routes.get(key) if key is not None else None
                if subs:
                    for sub in subs:
                        if sub.matches is None or sub.matches(event):
                            sub.deliver(event)
        if self._uuid_routes:
            uuid = event.get("Unique-ID")
            subs = self._uuid_routes.get(uuid) if uuid is not None else None
            if subs:
                for sub in subs:
                    if sub.matches is None or sub.matches(event):
                        sub.deliver(event)

    def _finish(self, reason: BaseException, *, clean: bool = False) -> None:
        """Fail everything that waits on this connection, once."""
        if self.closed.is_set():
            return
        self.lost_reason = reason
        self.closed.set()
        if self.telemetry is not None:
            self.telemetry.connection_closed()
        self._outbox.clear()
        self._wake_writers()
        while self._pending:
            pending = self._pending.popleft()
            stage = CommandStage.SENT if pending.written else CommandStage.NOT_SENT
            pending.error = ConnectionLost(f"{pending.label!r}: {reason}", stage=stage)
            pending.done.set()
        for job in self._jobs.values():
            job.error = ConnectionLost(f"background job: {reason}", stage=CommandStage.ACCEPTED)
            job.done.set()
        self._jobs.clear()
        if self._handler_pool is not None:
            # Before the routes below: no handler starts on a closed connection.
            self._handler_pool.close()
        subscriptions = [s for subs in self._routes.values() for s in subs]
        subscriptions += [s for subs in self._uuid_routes.values() for s in subs]
        for sub in subscriptions:
            if clean:
                sub.end()
            else:
                sub.fail(reason)
        for log_sub in self._log_subscribers:
            log_sub.end() if clean else log_sub.fail(reason)


async def _check_not_cancelled() -> None:
    """Raise the pending cancellation, if any, before a command has any effect.

    A deadline that has already passed counts too, even before the event
    loop has noticed it.
    """
    await anyio.lowlevel.checkpoint_if_cancelled()
    if anyio.current_effective_deadline() <= anyio.current_time():
        await anyio.lowlevel.checkpoint()


def describe_error(exc: BaseException) -> str:
    """A transport error as text that always says something (class, errno, message)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            name = errno.errorcode.get(current.errno, str(current.errno))
            detail = current.strerror or str(current)
            return f"{type(current).__name__} ({name}: {detail})"
        current = current.__cause__ or current.__context__
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
