"""Bounded per-subscriber event buffers with an explicit overflow policy."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

import anyio

from ._exceptions import ConnectionLost, GenesisError

__all__ = ["Overflow", "Subscription", "SubscriptionOverflow"]

T = TypeVar("T")


class Overflow(enum.Enum):
    """What happens when a subscriber's buffer is full.

    ``ERROR`` (default): the subscription is closed; the subscriber receives
    everything buffered, then :class:`SubscriptionOverflow`. Nothing is lost
    silently and memory stays bounded.
    ``DROP_OLDEST``: the oldest buffered item is discarded and counted in
    :attr:`Subscription.dropped` (for dashboards that only want the latest).
    ``BLOCK``: the connection's reader waits for room, pushing back on
    FreeSWITCH through TCP. Replies to commands wait behind it too, so a
    subscriber that awaits a command on the same connection while its buffer is
    full deadlocks; use it only for pure consumers.
    """

    ERROR = "error"
    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"


class SubscriptionOverflow(GenesisError):
    """A subscriber fell more than its buffer size behind (Overflow.ERROR)."""


class Subscription(Generic[T]):
    """An async iterator over events delivered by a connection.

    Delivery is synchronous on the reader side (no task switch per event);
    the subscriber wakes when something arrives or the connection ends.
    """

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
        self.overflow = overflow
        self.dropped = 0
        self._items: deque[T] = deque()
        self._waiter: anyio.Event | None = None
        self._room: anyio.Event | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._on_close = on_close

    # --- reader side -------------------------------------------------------
    def deliver(self, item: T) -> bool:
        """Queue an item; False means the reader must wait for room (BLOCK)."""
        if self._closed or self._error is not None:
            return True
        items = self._items
        if len(items) >= self.max_buffer:
            if self.overflow is Overflow.DROP_OLDEST:
                items.popleft()
                self.dropped += 1
            elif self.overflow is Overflow.BLOCK:
                return False
            else:
                self.fail(
                    SubscriptionOverflow(
                        f"subscriber fell {self.max_buffer} events behind; "
                        "raise max_buffer or choose another Overflow policy"
                    )
                )
                return True
        items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()
        return True

    async def wait_for_room(self) -> None:
        while len(self._items) >= self.max_buffer and not self._closed and self._error is None:
            room = self._room = anyio.Event()
            await room.wait()

    def fail(self, error: BaseException) -> None:
        """End the subscription: buffered items first, then ``error``."""
        if self._error is None:
            self._error = error
        self._wake_all()

    def _wake_all(self) -> None:
        for event in (self._waiter, self._room):
            if event is not None:
                event.set()
        self._waiter = self._room = None

    # --- subscriber side ---------------------------------------------------
    async def receive(self) -> T:
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            items = self._items
            if items:
                item = items.popleft()
                room = self._room
                if room is not None:
                    self._room = None
                    room.set()
                return item
            if self._error is not None:
                raise self._error
            # Receivers share one wake-up event: a pool of workers may wait together.
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = anyio.Event()
            await waiter.wait()

    def receive_nowait(self) -> T | None:
        """The next buffered item, or None if nothing is buffered."""
        if self._items:
            return self._items.popleft()
        if self._error is not None:
            raise self._error
        return None

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        items = self._items
        if items and not self._closed:
            # Fast path, no extra coroutine: an event is already buffered.
            item = items.popleft()
            room = self._room
            if room is not None:
                self._room = None
                room.set()
            return item
        try:
            return await self.receive()
        except anyio.ClosedResourceError:
            raise StopAsyncIteration from None
        except ConnectionLost:
            if self._closing_cleanly:
                raise StopAsyncIteration from None
            raise

    _closing_cleanly = False

    def end(self) -> None:
        """End iteration cleanly after the buffered items (the connection was closed by us)."""
        self._closing_cleanly = True
        self.fail(ConnectionLost("connection closed"))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._items.clear()
        self._wake_all()
        if self._on_close is not None:
            self._on_close(self)

    @property
    def buffered(self) -> int:
        return len(self._items)

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
