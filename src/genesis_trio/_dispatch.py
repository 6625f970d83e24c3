"""Running event handlers: one pool of workers per connection.

Every handler registered on a connection shares one queue and one elastic
pool of worker tasks. A handler that never suspends is served by the same
long-lived worker event after event, with no task switch and no task
creation per event; a handler that suspends makes the pool grow (up to its
bound) so it never holds up other events. Each registration has its own
concurrency limit: 1 keeps its events strictly in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any

import anyio
import anyio.abc

from ._util import logger
from .protocol import Event

__all__ = ["EventHandler", "HandlerPool", "HandlerRegistration"]

EventHandler = Callable[[Event], Awaitable[object] | object]


class HandlerRegistration:
    """A handler's place in a connection's routing table; ``close()`` removes it."""

    __slots__ = (
        "_on_close",
        "_pool",
        "backlog",
        "closed",
        "handler",
        "matches",
        "max_concurrent",
        "running",
    )

    def __init__(
        self,
        pool: HandlerPool,
        handler: EventHandler,
        *,
        max_concurrent: int,
        matches: Callable[[Event], bool] | None = None,
        on_close: Callable[[HandlerRegistration], None] | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._pool = pool
        self.handler = handler
        self.max_concurrent = max_concurrent
        self.matches = matches
        self.running = 0
        self.backlog: deque[Event] = deque()
        self.closed = False
        self._on_close = on_close

    # The reader treats registrations like subscriptions.
    def deliver(self, event: Event) -> bool:
        return True if self.closed else self._pool.submit(self, event)

    async def wait_for_room(self) -> None:
        await self._pool.wait_for_room()

    def fail(self, error: BaseException) -> None:
        """Nothing to fail: already queued events still reach the handler."""

    def end(self) -> None:
        """Nothing to end: already queued events still reach the handler."""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._pool.forget(self)
        if self._on_close is not None:
            self._on_close(self)


class HandlerPool:
    """One queue of (handler, event) and the workers that drain it."""

    def __init__(
        self, task_group: anyio.abc.TaskGroup, *, max_workers: int = 1000, max_buffer: int = 10_000
    ) -> None:
        self._task_group = task_group
        self._max_workers = max(1, max_workers)
        self._max_buffer = max(1, max_buffer)
        self._queue: deque[tuple[HandlerRegistration, Event]] = deque()
        self._outstanding = 0  # queued plus backlogged: what max_buffer bounds
        self._ready: anyio.Event | None = None
        self._room: anyio.Event | None = None
        self._workers = 0
        self._idle = 0
        self._closed = False

    # --- reader side ------------------------------------------------------------
    def submit(self, registration: HandlerRegistration, event: Event) -> bool:
        """Queue a call; False means the reader must wait for room first."""
        if self._closed:
            return True
        if self._outstanding >= self._max_buffer:
            return False
        self._queue.append((registration, event))
        self._outstanding += 1
        if self._workers == 0:
            self._spawn()
        ready = self._ready
        if ready is not None:
            self._ready = None
            ready.set()
        return True

    async def wait_for_room(self) -> None:
        while self._outstanding >= self._max_buffer and not self._closed:
            room = self._room
            if room is None:
                room = self._room = anyio.Event()
            await room.wait()

    def forget(self, registration: HandlerRegistration) -> None:
        self._outstanding -= len(registration.backlog)
        registration.backlog.clear()
        self._wake_reader()

    def close(self) -> None:
        """No new calls; workers finish what is queued, then exit."""
        self._closed = True
        for event in (self._ready, self._room):
            if event is not None:
                event.set()
        self._ready = self._room = None

    # --- workers ------------------------------------------------------------------
    def _spawn(self) -> None:
        self._workers += 1
        self._idle += 1  # ready from now on, even before it first runs
        self._task_group.start_soon(self._work, name="esl-handler-worker")

    def _wake_reader(self) -> None:
        room = self._room
        if room is not None and self._outstanding < self._max_buffer:
            self._room = None
            room.set()

    async def _next(self) -> tuple[HandlerRegistration, Event] | None:
        queue = self._queue
        while not queue:
            if self._closed:
                return None
            ready = self._ready
            if ready is None:
                ready = self._ready = anyio.Event()
            await ready.wait()
        return queue.popleft()

    async def _work(self) -> None:
        try:
            while True:
                item = await self._next()
                if item is None:
                    return
                registration, event = item
                if registration.closed:
                    self._outstanding -= 1
                    self._wake_reader()
                    continue
                if registration.running >= registration.max_concurrent:
                    # Its running calls will take it from the backlog, in order.
                    registration.backlog.append(event)
                    continue
                self._idle -= 1
                if self._idle == 0 and self._workers < self._max_workers:
                    self._spawn()
                await self._run(registration, event)
                if self._idle > 1:
                    return  # enough workers are waiting already: retire
                self._idle += 1
        finally:
            self._workers -= 1

    async def _run(self, registration: HandlerRegistration, event: Event) -> None:
        registration.running += 1
        try:
            while True:
                self._outstanding -= 1
                self._wake_reader()
                await call_handler(registration.handler, event)
                if not registration.backlog or registration.closed:
                    return
                event = registration.backlog.popleft()
        finally:
            registration.running -= 1


async def call_handler(handler: EventHandler, event: Event) -> None:
    """Call a sync or async handler; its exception is logged, never propagated."""
    try:
        result: Any = handler(event)
        # Cheap checks first: this runs once per event per handler.
        if type(result) is CoroutineType or (result is not None and isinstance(result, Awaitable)):
            await result
    except Exception:
        logger.exception("event handler %r failed on %r", handler, event)
