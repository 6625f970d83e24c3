"""Queue: FIFO slots with a concurrency bound, as ``async with`` blocks."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING
from uuid import uuid4

import anyio
import anyio.lowlevel
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider

from .. import tracing
from .._exceptions import ChannelHangup, ConnectionLost
from .._util import collapse_single_exception_group
from ._backend import QueueBackend, waiting_span
from ._errors import QueueTimeoutError
from ._memory import InMemoryBackend

if TYPE_CHECKING:
    from ..channel import Channel

__all__ = ["Queue", "QueueSemaphore", "QueueSlot"]


@dataclass(frozen=True, slots=True)
class QueueSlot:
    """A held slot, as bound by ``async with queue.slot(...) as slot``."""

    queue_id: str
    item_id: str
    #: Waiters in line, this one included, when it joined.
    depth: int
    #: Seconds spent between joining the line and holding the slot.
    waited: float


class Queue:
    """FIFO queues with at most ``max_concurrent`` holders each, keyed by queue id.

    ``async with queue.slot("support", max_concurrent=2) as slot:`` waits for
    this caller's turn (strictly first come, first served), holds one of the
    two slots for the block, and frees it however the block ends: normally,
    by an exception, or by cancellation. A waiter that times out or is
    cancelled leaves the line at once, so it never holds up those behind it.

    The backend decides where the line lives: :class:`InMemoryBackend` (the
    default) for one process, :class:`~genesis_trio.queue.RedisBackend` for
    many processes on many machines.
    """

    __slots__ = ("_backend", "_meter_provider", "_tracer_provider")

    def __init__(
        self,
        backend: QueueBackend | None = None,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._backend: QueueBackend = InMemoryBackend() if backend is None else backend
        # None: the global providers, read at each wait (an SDK set up later is seen).
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider

    @property
    def backend(self) -> QueueBackend:
        return self._backend

    def slot(
        self,
        queue_id: str,
        *,
        max_concurrent: int = 1,
        timeout: float | None = None,
        item_id: str | None = None,
        channel: Channel | None = None,
    ) -> AbstractAsyncContextManager[QueueSlot]:
        """Wait for a turn in ``queue_id`` and hold a slot for the ``async with`` block.

        :param max_concurrent: slots of this queue; every user of one queue
            must pass the same number (``ValueError`` otherwise, while it is in use).
        :param timeout: seconds to wait for a slot before raising
            :class:`QueueTimeoutError` (a ``TimeoutError``); ``None`` waits
            for as long as the enclosing cancel scopes allow.
        :param item_id: what this waiter is (a call's uuid, say), recorded on
            the ``queue.wait_and_acquire`` span; a random id by default
            (the channel's uuid when ``channel`` is given).
        :param channel: the call this place in line is for. When it hangs up,
            or the connection that carries it drops, the waiter leaves the
            line at once (a holder's block is cancelled and its slot freed)
            and :class:`~genesis_trio.ChannelHangup` or
            :class:`~genesis_trio.ConnectionLost` is raised from the ``async with``.
        """
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        if timeout is not None and (math.isnan(timeout) or timeout < 0):
            raise ValueError(f"timeout must be None or >= 0, not {timeout}")
        if channel is None:
            return self._slot(queue_id, max_concurrent, item_id, wait_limit=timeout)
        return self._slot_for_call(
            channel,
            queue_id,
            max_concurrent,
            channel.uuid if item_id is None else item_id,
            wait_limit=timeout,
        )

    @asynccontextmanager
    async def _slot_for_call(
        self,
        channel: Channel,
        queue_id: str,
        max_concurrent: int,
        item_id: str,
        *,
        wait_limit: float | None,
    ) -> AsyncIterator[QueueSlot]:
        # The call owns the wait: a watcher beside the waiter (and then the
        # holder) cancels both the moment the call ends or its connection goes.
        ended: BaseException | None = None
        completed = False
        with collapse_single_exception_group():
            async with anyio.create_task_group() as task_group:

                async def watch_the_call() -> None:
                    nonlocal ended
                    try:
                        await channel.wait("CHANNEL_HANGUP")
                        ended = ChannelHangup(channel.uuid, channel.hangup_cause)
                    except (ChannelHangup, ConnectionLost) as exc:
                        ended = exc
                    task_group.cancel_scope.cancel()

                task_group.start_soon(watch_the_call)
                try:
                    async with self._slot(
                        queue_id, max_concurrent, item_id, wait_limit=wait_limit
                    ) as slot:
                        yield slot
                    completed = True
                finally:
                    task_group.cancel_scope.cancel()
        if ended is not None and not completed:
            raise ended

    def semaphore(
        self, queue_id: str, max_concurrent: int = 1, *, timeout: float | None = None
    ) -> QueueSemaphore:
        """A reusable handle on one queue: ``async with sem:`` takes a slot like :meth:`slot`."""
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        return QueueSemaphore(self, queue_id, max_concurrent, timeout=timeout)

    async def depth(self, queue_id: str) -> int:
        """How many waiters are in line for ``queue_id`` (holders not counted)."""
        return await self._backend.depth(queue_id)

    async def in_use(self, queue_id: str) -> int:
        """How many slots of ``queue_id`` are held."""
        return await self._backend.in_use(queue_id)

    @asynccontextmanager
    async def _slot(
        self, queue_id: str, max_concurrent: int, item_id: str | None, *, wait_limit: float | None
    ) -> AsyncIterator[QueueSlot]:
        ticket = uuid4().hex
        # The caller's id goes into the ticket to make a Redis line readable;
        # the random part keeps two waiters with one item id apart.
        label = ticket if item_id is None else item_id
        if item_id is not None:
            ticket = f"{item_id}#{ticket[:16]}"
        backend = self._backend
        # Like trio.Lock.acquire: honour a pending cancellation before taking
        # anything, then let a free slot be taken without a cancellable wait.
        await anyio.lowlevel.checkpoint_if_cancelled()
        started = anyio.current_time()
        try:
            with tracing.queue_wait_and_acquire(
                queue_id,
                label,
                max_concurrent=max_concurrent,
                timeout=wait_limit,
                timeout_error=QueueTimeoutError,
                tracer_provider=self._tracer_provider,
                meter_provider=self._meter_provider,
            ) as span:
                depth = 0
                token = waiting_span.set(span)
                try:
                    with anyio.move_on_after(wait_limit) as deadline:
                        depth = await backend.join(queue_id, ticket, max_concurrent)
                        span.joined(depth)
                        await backend.wait_for_turn(queue_id, ticket)
                finally:
                    waiting_span.reset(token)
                if deadline.cancelled_caught:
                    raise QueueTimeoutError(queue_id, label, wait_limit or 0.0)
            slot = QueueSlot(queue_id, label, depth, anyio.current_time() - started)
            await anyio.lowlevel.cancel_shielded_checkpoint()
            async with backend.hold(queue_id, ticket):
                try:
                    yield slot
                finally:
                    tracing.record_queue_release(meter_provider=self._meter_provider)
        finally:
            # Every exit path leaves the line, so a timed-out, cancelled or
            # crashed waiter never keeps a place or a slot. Shielded: this is
            # exactly the work a cancellation must not skip.
            with anyio.CancelScope(shield=True):
                await backend.leave(queue_id, ticket)


class QueueSemaphore:
    """One queue's slots as a semaphore: ``async with sem as slot: ...``.

    Reusable and shareable: any number of tasks may be inside ``async with sem``
    at once (up to the bound); each task's exit frees the slot that task took.
    Call it for a per-use item id: ``async with sem(item_id=call_uuid):``.
    """

    __slots__ = ("_held", "_max_concurrent", "_queue", "_queue_id", "_timeout")

    def __init__(
        self, queue: Queue, queue_id: str, max_concurrent: int, *, timeout: float | None = None
    ) -> None:
        self._queue = queue
        self._queue_id = queue_id
        self._max_concurrent = max_concurrent
        self._timeout = timeout
        # Keyed by task: concurrent `async with sem` in many tasks is the point
        # of a semaphore, so one attribute for "the" held slot cannot work.
        self._held: dict[int, list[AbstractAsyncContextManager[QueueSlot]]] = {}

    @property
    def queue_id(self) -> str:
        return self._queue_id

    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    def __call__(
        self, *, item_id: str | None = None, channel: Channel | None = None
    ) -> AbstractAsyncContextManager[QueueSlot]:
        return self._queue.slot(
            self._queue_id,
            max_concurrent=self._max_concurrent,
            timeout=self._timeout,
            item_id=item_id,
            channel=channel,
        )

    async def __aenter__(self) -> QueueSlot:
        slot_cm = self()
        slot = await slot_cm.__aenter__()
        self._held.setdefault(anyio.get_current_task().id, []).append(slot_cm)
        return slot

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_id = anyio.get_current_task().id
        stack = self._held[task_id]
        slot_cm = stack.pop()
        if not stack:
            del self._held[task_id]
        return await slot_cm.__aexit__(exc_type, exc, tb)
