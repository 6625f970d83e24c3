"""What a queue backend must do, whatever stores the line.

The :class:`~genesis_trio.queue.Queue` drives a backend through one fixed
sequence per waiter, and always ends it with :meth:`QueueBackend.leave` (run
shielded, on every exit path), so a backend never has to guess whether a
waiter gave up::

    depth = await backend.join(queue_id, ticket, max_concurrent)
    await backend.wait_for_turn(queue_id, ticket)     # may be cancelled
    async with backend.hold(queue_id, ticket):
        ...                                           # the caller's work
    await backend.leave(queue_id, ticket)             # always, shielded

A ticket is unique per waiter (the queue makes it); it identifies the waiter
in the line and, once granted, the slot it holds.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..tracing import QueueWaitSpan

__all__ = ["QueueBackend", "note_requeued", "waiting_span"]

#: The span of the wait the current task is in (set by the Queue around join and wait_for_turn).
waiting_span: ContextVar[QueueWaitSpan | None] = ContextVar("waiting_span", default=None)


def note_requeued() -> None:
    """For a backend: the current waiter lost its place and joined the line again."""
    span = waiting_span.get()
    if span is not None:
        span.requeued()


@runtime_checkable
class QueueBackend(Protocol):
    """FIFO lines with at most ``max_concurrent`` slot holders per queue id.

    Slots are granted strictly in the order tickets joined: a free slot always
    goes to the oldest waiter still in line.
    """

    async def join(self, queue_id: str, ticket: str, max_concurrent: int) -> int:
        """Put ``ticket`` at the tail of the line; return how many wait, itself included.

        Raises ``ValueError`` when the queue is in use with another
        ``max_concurrent``: one queue has one bound.
        """
        ...

    async def wait_for_turn(self, queue_id: str, ticket: str) -> None:
        """Return once ``ticket`` holds a slot. Cancellable at any point."""
        ...

    def hold(self, queue_id: str, ticket: str) -> AbstractAsyncContextManager[None]:
        """Scope during which the slot is held (a distributed backend renews its lease here).

        Exceptions from the ``async with`` body must come out as they went in,
        not wrapped in an exception group by a task group of the backend's.
        """
        ...

    async def leave(self, queue_id: str, ticket: str) -> None:
        """Drop ``ticket`` from the line or free its slot. Idempotent; never raises for
        an unknown ticket."""
        ...

    async def depth(self, queue_id: str) -> int:
        """How many tickets are waiting for a slot (not holding one)."""
        ...

    async def in_use(self, queue_id: str) -> int:
        """How many slots are held."""
        ...
