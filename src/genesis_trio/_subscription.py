"""Bounded per-subscriber event buffers with an explicit overflow policy.

The connection's reader delivers into these synchronously and never waits
for room: a full buffer applies its own policy and the reader moves on, so
replies, job results and channel state always get through.
"""

from __future__ import annotations

import enum
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

import anyio

from ._exceptions import ConnectionLost, GenesisError

__all__ = ["ConnectionGap", "Overflow", "Subscription", "SubscriptionOverflow"]

T = TypeVar("T")


class Overflow(enum.Enum):
    """What happens when a subscriber's (or a handler's) buffer is full.

    The connection's reader never waits for a consumer, so every policy
    decides at once:

    ``ERROR`` (default): the subscription ends; the subscriber receives
    everything buffered, then :class:`SubscriptionOverflow`. A handler
    registration stops running its handler and logs the error. Nothing is
    lost silently and memory stays bounded.
    ``DROP_OLDEST``: the oldest buffered item is discarded and counted in
    ``dropped`` (for dashboards that only want the latest).
    ``BLOCK``: deprecated; behaves as ``ERROR``. It used to make the reader
    wait for room, which stalled replies behind a slow consumer (a handler
    awaiting a command on its own connection deadlocked). Pushing back
    through TCP was never lossless either: FreeSWITCH queues what we do not
    read, drops events once its queue is full and drops the connection after
    500 lost events.
    """

    ERROR = "error"
    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"


def checked_overflow(overflow: Overflow, *, stacklevel: int = 3) -> Overflow:
    """The policy actually applied: ``BLOCK`` warns and becomes ``ERROR``.

    ``stacklevel`` counts from here to the user's call (public entry points
    convert first, so the warning points at the user's line).
    """
    if overflow is Overflow.BLOCK:
        warnings.warn(
            "Overflow.BLOCK is deprecated and behaves as Overflow.ERROR: the reader never "
            "waits for a consumer (raise max_buffer, or use DROP_OLDEST)",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        return Overflow.ERROR
    return overflow


@dataclass(frozen=True, slots=True)
class ConnectionGap:
    """A reconnecting Inbound is back after losing its connection: events may be missing.

    Yielded by a ``subscribe(..., gaps=True)`` subscription between the last event
    of the old connection and the first of the new one, once the new connection is
    authenticated and has its subscriptions, filters and log level again. Times are
    ``anyio.current_time()`` values; ``reason`` says why the old connection ended
    (it never holds the password).
    """

    reason: str
    lost_at: float
    restored_at: float
    #: Connection attempts it took (1: the first one succeeded).
    attempts: int

    @property
    def down_for(self) -> float:
        """Seconds without a connection."""
        return self.restored_at - self.lost_at


class SubscriptionOverflow(GenesisError):
    """A subscriber fell more than its buffer size behind (Overflow.ERROR)."""


class Subscription(Generic[T]):
    """An async iterator over events delivered by a connection.

    Delivery is synchronous on the reader side (no task switch per event);
    the subscriber wakes when something arrives or the connection ends.
    """

    # Many are alive at once (a channel taps its connection twice, for as long
    # as the call lasts): no __dict__, and the buffer made on the first item.
    __slots__ = (
        "__weakref__",
        "_closed",
        "_closing_cleanly",
        "_error",
        "_items",
        "_on_close",
        "_waiter",
        "dropped",
        "matches",
        "max_buffer",
        "overflow",
    )

    def __init__(
        self,
        matches: Callable[[T], bool] | None = None,
        *,
        max_buffer: int = 10_000,
        overflow: Overflow = Overflow.ERROR,
        on_close: Callable[[Subscription[T]], None] | None = None,
    ) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self.matches = matches
        self.max_buffer = max_buffer
        self.overflow = checked_overflow(overflow)
        self.dropped = 0
        self._items: deque[T] | None = None
        self._closing_cleanly = False
        self._waiter: anyio.Event | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._on_close = on_close

    # --- reader side -------------------------------------------------------
    def deliver(self, item: T) -> None:
        """Queue an item, applying the overflow policy when full. Never waits."""
        if self._closed or self._error is not None:
            return
        items = self._items
        if items is None:
            items = self._items = deque()
        elif len(items) >= self.max_buffer:
            if self.overflow is Overflow.DROP_OLDEST:
                items.popleft()
                self.dropped += 1
            else:
                self.fail(
                    SubscriptionOverflow(
                        f"subscriber fell {self.max_buffer} events behind; "
                        "raise max_buffer or choose another Overflow policy"
                    )
                )
                return
        items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def fail(self, error: BaseException) -> None:
        """End the subscription: buffered items first, then ``error``."""
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    # --- subscriber side ---------------------------------------------------
    async def receive(self) -> T:
        """The next item; after the buffer drains, the error that ended the subscription.

        Raises :class:`anyio.ClosedResourceError` once :meth:`close` was called.
        """
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            items = self._items
            if items:
                return items.popleft()
            if self._error is not None:
                raise self._error
            # Receivers share one wake-up event: a pool of workers may wait together.
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = anyio.Event()
            await waiter.wait()

    def receive_nowait(self) -> T | None:
        """The next buffered item, or None if nothing is buffered yet.

        Like :meth:`receive`, it raises the error that ended the subscription
        once the buffer is empty, and :class:`anyio.ClosedResourceError`
        after :meth:`close`.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        items = self._items
        if items:
            return items.popleft()
        if self._error is not None:
            raise self._error
        return None

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        items = self._items
        if items and not self._closed:
            # Fast path, no extra coroutine: an event is already buffered.
            return items.popleft()
        try:
            return await self.receive()
        except anyio.ClosedResourceError:
            raise StopAsyncIteration from None
        except ConnectionLost:
            if self._closing_cleanly:
                raise StopAsyncIteration from None
            raise

    def end(self) -> None:
        """End iteration cleanly after the buffered items.

        Used when we closed the connection ourselves (``exit``) and when a
        channel's own events are over; anything the peer initiates fails the
        subscription with :class:`ConnectionLost` instead.
        """
        if self._error is None:
            self._closing_cleanly = True
            self.fail(ConnectionLost("connection closed"))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._items = None
        self._wake()
        if self._on_close is not None:
            self._on_close(self)

    @property
    def buffered(self) -> int:
        items = self._items
        return 0 if items is None else len(items)

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
