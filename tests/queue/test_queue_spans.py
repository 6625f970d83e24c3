"""One ``queue.wait_and_acquire`` span: a Queue on either backend records exactly the span that
``tracing.queue_wait_and_acquire`` records (for a queue of your own), outcome by outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import trio
import trio.testing
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from queue_signals import JoinSignal

from genesis_trio import tracing
from genesis_trio.queue import (
    InMemoryBackend,
    Queue,
    QueueBackend,
    QueueTimeoutError,
    RedisBackend,
)
from redis_server import redis_server, unique_prefix

pytestmark = pytest.mark.trio
__all__ = ["redis_server"]  # the session fixture, re-exported for pytest

# A guard against hangs, not a timing claim.
GUARD = 60

STACKTRACE = "exception.stacktrace"  # where each was raised: the one part that differs

OpenBackend = Callable[[], AbstractAsyncContextManager[QueueBackend]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def open_backend(request: pytest.FixtureRequest) -> OpenBackend:
    if request.param == "memory":

        @asynccontextmanager
        async def memory() -> AsyncIterator[QueueBackend]:
            yield InMemoryBackend()

        return memory
    server = request.getfixturevalue("redis_server")
    return lambda: RedisBackend(server.url, key_prefix=unique_prefix())


class Recorded:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def shapes(self) -> list[tuple[object, ...]]:
        return [_shape(span) for span in self.exporter.get_finished_spans()]


def _shape(span: ReadableSpan) -> tuple[object, ...]:
    scope = span.instrumentation_scope
    return (
        span.name,
        span.kind,
        scope.name if scope is not None else None,
        dict(span.attributes or {}),
        span.status.status_code,
        span.status.description,
        [
            (event.name, {k: v for k, v in (event.attributes or {}).items() if k != STACKTRACE})
            for event in span.events
        ],
    )


async def _queue_outcomes(
    backend: QueueBackend, provider: TracerProvider
) -> tuple[QueueTimeoutError, ValueError]:
    """acquired (with a timeout), timeout, cancelled while in line, error (a wrong bound)."""
    joined = trio.Event()

    def on_join(_depth: int) -> None:
        joined.set()

    queue = Queue(JoinSignal(backend, on_join), tracer_provider=provider)
    cancelled = trio.CancelScope()

    async def cancelled_waiter() -> None:
        with cancelled:
            async with queue.slot("support", item_id="cancelled"):
                pass

    async with queue.slot("support", item_id="first", timeout=30):
        with pytest.raises(QueueTimeoutError) as timed_out:
            async with queue.slot("support", timeout=0.05, item_id="late"):
                pass
        joined = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancelled_waiter)
            await joined.wait()  # in line: the backend has it
            cancelled.cancel()
        with pytest.raises(ValueError) as refused:
            async with queue.slot("support", max_concurrent=2, item_id="wrong"):
                pass
    return timed_out.value, refused.value


def _fail_inside(wait: tracing.QueueWaitSpan, error: Exception, *, depth: int | None) -> None:
    """A wait that ended with ``error`` (raised as the queue raised it)."""
    with wait as span:
        if depth is not None:
            span.joined(depth)
        raise error


async def test_a_queue_records_the_tracing_helpers_span(open_backend: OpenBackend) -> None:
    by_queue = Recorded()
    with trio.fail_after(GUARD):
        async with open_backend() as backend:
            timed_out, refused = await _queue_outcomes(backend, by_queue.provider)

    # The same four waits, through the public helper.
    by_hand = Recorded()
    provider = by_hand.provider
    with tracing.queue_wait_and_acquire(
        "support", "first", max_concurrent=1, timeout=30, tracer_provider=provider
    ) as span:
        span.joined(1)
    late = tracing.queue_wait_and_acquire(
        "support", "late", max_concurrent=1, timeout=0.05, tracer_provider=provider
    )
    with pytest.raises(QueueTimeoutError):
        _fail_inside(late, timed_out, depth=1)
    with (
        trio.CancelScope() as scope,
        tracing.queue_wait_and_acquire(
            "support", "cancelled", max_concurrent=1, tracer_provider=provider
        ) as span,
    ):
        span.joined(1)
        scope.cancel()
        await trio.sleep_forever()
    wrong = tracing.queue_wait_and_acquire(
        "support", "wrong", max_concurrent=2, tracer_provider=provider
    )
    with pytest.raises(ValueError):
        _fail_inside(wrong, refused, depth=None)  # refused on joining

    assert by_queue.shapes() == by_hand.shapes()
    names = {shape[0] for shape in by_queue.shapes()}
    assert names == {"queue.wait_and_acquire"}
