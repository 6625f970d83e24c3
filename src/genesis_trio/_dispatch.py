"""Running event handlers: one pool of workers per connection.

Every handler registered on a connection shares one elastic pool of worker
tasks. A handler that never suspends is served by the same long-lived worker
event after event, with no task switch and no task creation per event; a
handler that suspends makes the pool grow (up to its bound) so it never holds
up other events. Each registration has its own bounded buffer with its own
overflow policy, and its own concurrency limit: 1 keeps its events strictly
in order. The reader only ever appends to a buffer: it never waits for a
handler, so a handler may await a command on its own connection.
"""

from __future__ import annotations

import functools
import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread

from ._subscription import Overflow, SubscriptionOverflow, checked_overflow
from ._util import logger
from .protocol import Event

__all__ = [
    "DEFAULT_HANDLER_THREADS",
    "EventHandler",
    "HandlerPool",
    "HandlerRegistration",
    "in_worker_thread",
    "is_async_callable",
]

EventHandler = Callable[[Event], Awaitable[object] | object]

#: How many plain ``def`` handlers of one client may run at once, each in a worker
#: thread (AnyIO's own default limiter has 40 tokens too, but is shared by every user
#: of ``to_thread`` in the process: a client gets its own).
DEFAULT_HANDLER_THREADS = 40


def is_async_callable(handler: object) -> bool:
    """An ``async def`` function (or a partial of one, or an object with ``async __call__``)."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    if inspect.iscoroutinefunction(handler):
        return True
    if inspect.isfunction(handler) or inspect.ismethod(handler) or inspect.isbuiltin(handler):
        return False
    return inspect.iscoroutinefunction(getattr(handler, "__call__", None))  # noqa: B004


class _InWorkerThread:
    """A plain ``def`` handler, run by ``anyio.to_thread.run_sync`` so it never blocks the loop.

    Not abandoned on cancellation: a thread cannot be interrupted, and a handler still
    running after its connection's owner left would be a task without an owner. So
    leaving the ``async with`` waits for a running sync handler to return.
    """

    __slots__ = ("handler", "limiter")

    def __init__(self, handler: EventHandler, limiter: anyio.CapacityLimiter) -> None:
        self.handler = handler
        self.limiter = limiter

    async def __call__(self, event: Event) -> None:
        result: Any = await anyio.to_thread.run_sync(self.handler, event, limiter=self.limiter)
        if result is not None and isinstance(result, Awaitable):
            # A plain function that returned an awaitable (a lambda around a coroutine).
            await result

    def __repr__(self) -> str:
        return repr(self.handler)


def in_worker_thread(handler: EventHandler, limiter: anyio.CapacityLimiter) -> EventHandler:
    """``handler`` itself if it is async, else a wrapper running it in a worker thread."""
    if is_async_callable(handler):
        return handler
    return _InWorkerThread(handler, limiter)


class HandlerRegistration:
    """A handler's place in a connection's routing table; ``close()`` removes it.

    ``dropped`` counts events discarded by ``Overflow.DROP_OLDEST``; ``error``
    holds the :class:`SubscriptionOverflow` that stopped it under
    ``Overflow.ERROR``.
    """

    __slots__ = (
        "_on_close",
        "_pool",
        "closed",
        "dropped",
        "error",
        "handler",
        "matches",
        "max_buffer",
        "max_concurrent",
        "overflow",
        "queue",
        "running",
        "scheduled",
    )

    def __init__(
        self,
        pool: HandlerPool,
        handler: EventHandler,
        *,
        max_concurrent: int,
        max_buffer: int = 10_000,
        overflow: Overflow = Overflow.ERROR,
        matches: Callable[[Event], bool] | None = None,
        on_close: Callable[[HandlerRegistration], None] | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self._pool = pool
        self.handler = handler
        self.max_concurrent = max_concurrent
        self.max_buffer = max_buffer
        self.overflow = checked_overflow(overflow)
        self.matches = matches
        self.running = 0
        self.scheduled = 0  # places in the pool's ready queue
        self.queue: deque[Event] = deque()
        self.dropped = 0
        self.error: SubscriptionOverflow | None = None
        self.closed = False
        self._on_close = on_close

    @property
    def buffered(self) -> int:
        """Events waiting for the handler (the genesis.events.queue.depth gauge)."""
        return len(self.queue)

    # The reader treats registrations like subscriptions.
    def deliver(self, event: Event) -> None:
        if self.closed or self.error is not None:
            return
        queue = self.queue
        if len(queue) >= self.max_buffer:
            if self.overflow is Overflow.DROP_OLDEST:
                queue.popleft()
                self.dropped += 1
            else:
                self._overflowed()
                return
        queue.append(event)
        self._pool.schedule(self)

    def _overflowed(self) -> None:
        self.error = SubscriptionOverflow(
            f"handler {self.handler!r} fell {self.max_buffer} events behind and was stopped; "
            "raise max_buffer, use Overflow.DROP_OLDEST or hand work to a task"
        )
        logger.error("%s", self.error)
        # The reader is iterating the route lists: the entry stays, inert, until close().
        self.queue.clear()

    def fail(self, error: BaseException) -> None:
        """The connection is gone: calls not started yet are dropped."""
        self.queue.clear()

    def end(self) -> None:
        """The connection was closed: calls not started yet are dropped."""
        self.queue.clear()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        if self._on_close is not None:
            self._on_close(self)


class HandlerPool:
    """The workers that run every registration's queued calls."""

    def __init__(self, task_group: anyio.abc.TaskGroup, *, max_workers: int = 1000) -> None:
        self._task_group = task_group
        self._max_workers = max(1, max_workers)
        # One entry per call a worker may start now (bounded by max_concurrent).
        self._ready: deque[HandlerRegistration] = deque()
        self._wakeup: anyio.Event | None = None
        self._workers = 0
        self._idle = 0
        self._closed = False

    # --- reader side ------------------------------------------------------------
    def schedule(self, registration: HandlerRegistration) -> None:
        """A call was queued: make sure a worker will take it. Never waits."""
        if self._closed:
            registration.queue.clear()
            return
        if registration.running + registration.scheduled >= registration.max_concurrent:
            return  # its running calls take queued events in order when they finish
        registration.scheduled += 1
        self._ready.append(registration)
        if self._workers == 0:
            self._spawn()
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    def close(self) -> None:
        """No new calls: queued ones are dropped, running ones finish or are cancelled."""
        self._closed = True
        for registration in self._ready:
            registration.queue.clear()
        self._ready.clear()
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    # --- workers ------------------------------------------------------------------
    def _spawn(self) -> None:
        self._workers += 1
        self._idle += 1  # ready from now on, even before it first runs
        self._task_group.start_soon(self._work, name="esl-handler-worker")

    async def _next(self) -> HandlerRegistration | None:
        ready = self._ready
        while not ready:
            if self._closed:
                return None
            wakeup = self._wakeup
            if wakeup is None:
                wakeup = self._wakeup = anyio.Event()
            await wakeup.wait()
        return ready.popleft()

    async def _work(self) -> None:
        try:
            while True:
                registration = await self._next()
                if registration is None:
                    return
                registration.scheduled -= 1
                if registration.closed or not registration.queue:
                    continue
                self._idle -= 1
                if self._idle == 0 and self._workers < self._max_workers:
                    self._spawn()
                await self._run(registration)
                if self._idle > 1:
                    return  # enough workers are waiting already: retire
                self._idle += 1
        finally:
            self._workers -= 1

    async def _run(self, registration: HandlerRegistration) -> None:
        registration.running += 1
        try:
            queue = registration.queue
            # Closing the pool or the registration clears the queue: nothing more starts.
            while queue:
                await call_handler(registration.handler, queue.popleft())
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
