"""A queue backend for one process: the line is a dict, waking is an anyio.Event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

__all__ = ["InMemoryBackend"]


@dataclass(slots=True, eq=False)
class _Line:
    limit: int
    # Insertion order is arrival order; the value wakes that waiter when granted.
    waiting: dict[str, anyio.Event] = field(default_factory=dict)
    holders: set[str] = field(default_factory=set)

    def grant_free_slots(self) -> None:
        # Grants happen here, at release time, not when the waiter wakes: a free
        # slot is handed to the oldest waiter at once, so nobody who joined later
        # can slip in between the release and the wake-up.
        while self.waiting and len(self.holders) < self.limit:
            ticket = next(iter(self.waiting))
            self.holders.add(ticket)
            self.waiting.pop(ticket).set()

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.holders


class InMemoryBackend:
    """Strict FIFO slots for tasks of one process (trio or asyncio)."""

    def __init__(self) -> None:
        self._lines: dict[str, _Line] = {}

    async def join(self, queue_id: str, ticket: str, max_concurrent: int) -> int:
        line = self._lines.get(queue_id)
        if line is None:
            line = self._lines[queue_id] = _Line(limit=max_concurrent)
        elif line.limit != max_concurrent:
            raise ValueError(
                f"queue {queue_id!r} is in use with max_concurrent={line.limit}, "
                f"not {max_concurrent}"
            )
        if ticket in line.waiting or ticket in line.holders:
            raise ValueError(f"ticket {ticket!r} is already in queue {queue_id!r}")
        line.waiting[ticket] = anyio.Event()
        depth = len(line.waiting)
        line.grant_free_slots()
        return depth

    async def wait_for_turn(self, queue_id: str, ticket: str) -> None:
        line = self._lines.get(queue_id)
        if line is None or (ticket not in line.waiting and ticket not in line.holders):
            raise LookupError(f"ticket {ticket!r} has not joined queue {queue_id!r}")
        granted = line.waiting.get(ticket)
        # Already holding: return without a cancellable checkpoint, so a free
        # slot can be taken even with a zero timeout (the queue yields after).
        if granted is not None:
            await granted.wait()

    @asynccontextmanager
    async def hold(self, queue_id: str, ticket: str) -> AsyncIterator[None]:
        yield

    async def leave(self, queue_id: str, ticket: str) -> None:
        line = self._lines.get(queue_id)
        if line is None:
            return
        line.waiting.pop(ticket, None)
        line.holders.discard(ticket)
        line.grant_free_slots()
        if line.idle:
            # An idle queue forgets its bound, so it may be reused with another one.
            del self._lines[queue_id]

    async def depth(self, queue_id: str) -> int:
        line = self._lines.get(queue_id)
        return 0 if line is None else len(line.waiting)

    async def in_use(self, queue_id: str) -> int:
        line = self._lines.get(queue_id)
        return 0 if line is None else len(line.holders)
