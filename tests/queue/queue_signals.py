"""A pass-through queue backend that says when a waiter has joined the line.

Tests need arrival order to be known, not raced: they start the next waiter
only after this one's join has been acknowledged by the real backend.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from genesis_trio.queue import QueueBackend


class JoinSignal:
    """Delegates everything to ``inner``; calls ``on_join(depth)`` once a join succeeded."""

    def __init__(self, inner: QueueBackend, on_join: Callable[[int], object]) -> None:
        self._inner = inner
        self._on_join = on_join

    async def join(self, queue_id: str, ticket: str, max_concurrent: int) -> int:
        depth = await self._inner.join(queue_id, ticket, max_concurrent)
        self._on_join(depth)
        return depth

    async def wait_for_turn(self, queue_id: str, ticket: str) -> None:
        await self._inner.wait_for_turn(queue_id, ticket)

    def hold(self, queue_id: str, ticket: str) -> AbstractAsyncContextManager[None]:
        return self._inner.hold(queue_id, ticket)

    async def leave(self, queue_id: str, ticket: str) -> None:
        await self._inner.leave(queue_id, ticket)

    async def depth(self, queue_id: str) -> int:
        return await self._inner.depth(queue_id)

    async def in_use(self, queue_id: str) -> int:
        return await self._inner.in_use(queue_id)
