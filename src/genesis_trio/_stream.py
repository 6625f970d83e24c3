"""The one async adapter: an ESL byte stream owned inside a task group.

One reader task parses frames and routes them; one send lock keeps command
bytes whole; replies are matched to commands in the order the commands were
written, so a caller cancelled after writing leaves a slot that silently
absorbs its late reply instead of stealing the next command's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVarTuple

import anyio
import anyio.abc

from ._dispatch import EventHandler, HandlerPool, HandlerRegistration
from ._exceptions import CommandStage, ConnectionLost, ProtocolError
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

    def deliver(self, event: Event, /) -> bool: ...
    async def wait_for_room(self) -> None: ...
    def fail(self, error: BaseException, /) -> None: ...
    def end(self) -> None: ...


ALL = "ALL"


@dataclass(slots=True, eq=False)
class _PendingReply:
    label: str
    done: anyio.Event = field(default_factory=anyio.Event)
    written: bool = False
    reply: Reply | None = None
    error: BaseException | None = None


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
        write_timeout: float = 30.0,
        receive_size: int = 65536,
    ) -> None:
        self._stream = stream
        self._parser = (
            ESLParser(lazy_events=True)
            if max_frame_size is None
            else ESLParser(max_frame_size=max_frame_size, lazy_events=True)
        )
        self._write_timeout = write_timeout
        self._receive_size = receive_size
        self._outbox: list[tuple[_PendingReply | None, bytes]] = []
        self._flushing = False
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
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + grace
            if send_exit and self.is_open and not self._closing:
                self._closing = True
                try:
                    await self.send_command(cmd.exit(), "exit")
                    await self._reader_done.wait()
                except ConnectionLost:
                    pass
            self._closing = True
            self._finish(ConnectionLost("connection closed"), clean=True)
            await self._stream.aclose()

    # --- writing ----------------------------------------------------------
    async def send_command(self, data: bytes, label: str | None = None) -> Reply:
        """Write one command and wait for its reply (command/reply or api/response)."""
        label = label if label is not None else redact_command(data.decode("utf-8", "replace"))
        if self.telemetry is not None:
            return await self.telemetry.traced_command(self._send_command, data, label)
        return await self._send_command(data, label)

    async def _send_command(self, data: bytes, label: str) -> Reply:
        if not self.is_open:
            raise ConnectionLost(f"cannot send {label!r}", stage=CommandStage.NOT_SENT)
        pending = _PendingReply(label)
        # Queued in the same step as its reply slot, so bytes and slots keep one order.
        self._pending.append(pending)
        self._outbox.append((pending, data))
        if not self._flushing:
            await self._flush()
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.reply is not None
        return pending.reply

    async def send_raw(self, data: bytes) -> None:
        """Write bytes that expect no reply (rare: e.g. a fake peer's frames)."""
        if not self.is_open:
            raise ConnectionLost("cannot send raw bytes", stage=CommandStage.NOT_SENT)
        self._outbox.append((None, data))
        if not self._flushing:
            await self._flush()
        if not self.is_open:
            raise self.lost_reason or ConnectionLost("connection closed")

    async def _flush(self) -> None:
        """Write everything queued, in order, batching commands queued meanwhile.

        Whoever finds no flush in progress becomes the writer; commands queued
        while it writes go out together in its next write. A half-written
        command would corrupt the stream for every later one, so the writing
        is shielded from cancellation; each write has its own deadline, which
        bounds a peer that stopped reading.
        """
        self._flushing = True
        try:
            with anyio.CancelScope(shield=True) as scope:
                while self._outbox and self.is_open:
                    batch, self._outbox = self._outbox, []
                    data = batch[0][1] if len(batch) == 1 else b"".join(d for _, d in batch)
                    scope.deadline = anyio.current_time() + self._write_timeout
                    label = next((p.label for p, _ in batch if p is not None), "raw")
                    try:
                        await self._stream.send(data)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                        self._finish(ConnectionLost(f"write of {label!r} failed: {exc}"))
                        return
                    for pending, _ in batch:
                        if pending is not None:
                            pending.written = True
            if scope.cancelled_caught:
                self._finish(ConnectionLost("a write timed out: the peer stopped reading"))
        finally:
            self._flushing = False

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
    ) -> HandlerRegistration:
        """Run ``handler`` for matching events on the connection's worker pool.

        Sequential by default (the handler sees its events one at a time, in
        order); with ``concurrent=True`` up to ``max_concurrent`` calls overlap.
        Past 10 000 queued calls the reader waits (backpressure) rather than
        growing memory. A handler that raises is logged and the connection
        carries on.
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
            while True:
                try:
                    data = await stream.receive(self._receive_size)
                except anyio.EndOfStream:
                    data = b""
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    error = ConnectionLost(f"connection broke: {exc}")
                    break
                parser.receive_data(data)
                while True:
                    message = parser.next_event()
                    if message is NEED_DATA:
                        break
                    if message is CONNECTION_CLOSED:
                        error = ConnectionLost("connection closed by peer")
                        return
                    blocked = dispatch(message)
                    if blocked:
                        await _wait_for_room(blocked, message)
        except ProtocolError as exc:
            error = ConnectionLost(f"protocol error from peer: {exc}")
            logger.error("ESL protocol error, closing the connection: %s", exc)
        finally:
            self._reader_done.set()
            self._finish(error or ConnectionLost("connection closed"), clean=self._closing)
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()

    def _dispatch(self, message: object) -> list[_Route] | None:
        if type(message) is Event:
            return self._route_event(message)
        if type(message) is CommandReply or type(message) is ApiResponse:
            if self._pending:
                pending = self._pending.popleft()
                pending.reply = message
                pending.done.set()
            else:
                logger.warning("reply with no command waiting for it: %r", message)
            return None
        if type(message) is DisconnectNotice:
            if message.disposition != "linger":
                self._closing = True
            for listener in self._notice_listeners:
                listener(message)
            return None
        if type(message) is LogData:
            for log_sub in self._log_subscribers:
                log_sub.deliver(message)
            return None
        if type(message) is AuthRequest:
            self.auth_requested.set()
            return None
        if type(message) is RudeRejection:
            self._finish(ConnectionLost(f"rejected by FreeSWITCH: {message.body.strip()}"))
            return None
        logger.debug("ignoring frame %r", message)
        return None

    def _route_event(self, event: Event) -> list[_Route] | None:
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
        blocked: list[_Route] | None = None
        routes = self._routes
        if routes:
            # As in FreeSWITCH's own subscriptions, only CUSTOM events route by subclass.
            subclass = event.get("Event-Subclass") if name == "CUSTOM" else None
            for key in (name, subclass, ALL):
                subs = routes.get(key) if key is not None else None
                if subs:
                    for sub in subs:
                        if (sub.matches is None or sub.matches(event)) and not sub.deliver(event):
                            blocked = blocked or []
                            blocked.append(sub)
        if self._uuid_routes:
            uuid = event.get("Unique-ID")
            subs = self._uuid_routes.get(uuid) if uuid is not None else None
            if subs:
                for sub in subs:
                    if (sub.matches is None or sub.matches(event)) and not sub.deliver(event):
                        blocked = blocked or []
                        blocked.append(sub)
        return blocked

    def _finish(self, reason: BaseException, *, clean: bool = False) -> None:
        """Fail everything that waits on this connection, once."""
        if self.closed.is_set():
            return
        self.lost_reason = reason
        self.closed.set()
        if self.telemetry is not None:
            self.telemetry.connection_closed()
        self._outbox.clear()
        while self._pending:
            pending = self._pending.popleft()
            stage = CommandStage.SENT if pending.written else CommandStage.NOT_SENT
            pending.error = ConnectionLost(f"{pending.label!r}: {reason}", stage=stage)
            pending.done.set()
        for job in self._jobs.values():
            job.error = ConnectionLost(f"background job: {reason}", stage=CommandStage.ACCEPTED)
            job.done.set()
        self._jobs.clear()
        subscriptions = [s for subs in self._routes.values() for s in subs]
        subscriptions += [s for subs in self._uuid_routes.values() for s in subs]
        for sub in subscriptions:
            if clean:
                sub.end()
            else:
                sub.fail(reason)
        for log_sub in self._log_subscribers:
            log_sub.end() if clean else log_sub.fail(reason)
        if self._handler_pool is not None:
            self._handler_pool.close()


async def _wait_for_room(blocked: list[_Route], event: object) -> None:
    for sub in blocked:
        await sub.wait_for_room()
        assert isinstance(event, Event)
        sub.deliver(event)
