"""Queue on the Redis backend, against a real redis-server (one process, many tasks)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from functools import partial

import anyio
import anyio.abc
import anyio.lowlevel
import coredis
import pytest
import trio
import trio.testing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from queue_signals import JoinSignal

from genesis_trio.queue import (
    Queue,
    QueueBackend,
    QueueLeaseLost,
    QueueTimeoutError,
    RedisBackend,
)
from redis_server import RedisServer, redis_server, unique_prefix

__all__ = ["redis_server"]  # the session fixture, re-exported for pytest

pytestmark = pytest.mark.redis

# Every wait below is bounded: a broken backend fails the test, it never hangs it.
# A guard against hangs, not a timing claim: a loaded machine may take a while.
GUARD = 60


@pytest.fixture
async def backend(redis_server: RedisServer) -> AsyncIterator[RedisBackend]:
    async with RedisBackend(
        redis_server.url, key_prefix=unique_prefix(), lease_ttl=3.0, heartbeat_interval=0.5
    ) as backend:
        yield backend


async def _join_then_hold(
    backend: QueueBackend,
    queue_id: str,
    name: str,
    served: list[str],
    *,
    max_concurrent: int = 1,
    tracer_provider: TracerProvider | None = None,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """A waiter that reports (through ``task_status``) once Redis has it in line."""
    queue = Queue(
        JoinSignal(backend, lambda _depth: task_status.started()), tracer_provider=tracer_provider
    )
    async with queue.slot(queue_id, max_concurrent=max_concurrent, item_id=name):
        served.append(name)
        await anyio.lowlevel.checkpoint()


@pytest.mark.trio
async def test_backend_satisfies_the_protocol(backend: RedisBackend) -> None:
    assert isinstance(backend, QueueBackend)


@pytest.mark.trio
async def test_turns_follow_arrival_order(backend: RedisBackend) -> None:
    queue = Queue(backend)
    served: list[str] = []
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery, queue.slot("support"):
            for number in range(6):
                await nursery.start(_join_then_hold, backend, "support", f"c{number}", served)
            assert await queue.depth("support") == 6
            assert await queue.in_use("support") == 1
    assert served == [f"c{number}" for number in range(6)]
    assert (await queue.depth("support"), await queue.in_use("support")) == (0, 0)
    # An idle queue leaves nothing behind in Redis.
    assert [key async for key in backend.client.scan_iter(match=f"{backend.key_prefix}*")] == []


@pytest.mark.trio
async def test_at_most_max_concurrent_hold_a_slot(backend: RedisBackend) -> None:
    queue = Queue(backend)
    inside = 0
    most = 0
    all_in = trio.Event()

    async def caller() -> None:
        nonlocal inside, most
        async with queue.slot("support", max_concurrent=3):
            inside += 1
            most = max(most, inside)
            if inside == 3:
                all_in.set()
            # Hold until the bound has been reached once, so "3 at a time" is
            # observed rather than hoped for.
            await all_in.wait()
            await trio.lowlevel.checkpoint()
            inside -= 1

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            for _ in range(9):
                nursery.start_soon(caller)
    assert most == 3
    assert await queue.in_use("support") == 0


@pytest.mark.trio
async def test_timeout_raises_and_leaves_no_ghost(backend: RedisBackend) -> None:
    queue = Queue(backend)
    served: list[str] = []
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery, queue.slot("support"):
            with pytest.raises(QueueTimeoutError) as caught:
                async with queue.slot("support", timeout=0.2, item_id="late"):
                    pytest.fail("acquired a held slot")
            assert await queue.depth("support") == 0
            await nursery.start(_join_then_hold, backend, "support", "next", served)
    assert served == ["next"]
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.item_id == "late"


@pytest.mark.trio
async def test_cancelled_waiter_leaves_the_line(backend: RedisBackend) -> None:
    queue = Queue(backend)
    served: list[str] = []
    doomed = trio.CancelScope()
    doomed_gone = trio.Event()

    async def doomed_waiter(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with doomed:
            await _join_then_hold(backend, "support", "doomed", served, task_status=task_status)
        doomed_gone.set()

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery, queue.slot("support"):
            await nursery.start(doomed_waiter)
            await nursery.start(_join_then_hold, backend, "support", "next", served)
            assert await queue.depth("support") == 2
            doomed.cancel()
            await doomed_gone.wait()
            assert await queue.depth("support") == 1
    assert served == ["next"]


@pytest.mark.trio
async def test_a_queue_has_one_bound_while_in_use(backend: RedisBackend) -> None:
    queue = Queue(backend)
    async with queue.slot("support", max_concurrent=2):
        with pytest.raises(ValueError, match="max_concurrent=2"):
            async with queue.slot("support", max_concurrent=5):
                pass
    async with queue.slot("support", max_concurrent=5):
        assert await queue.in_use("support") == 1


@pytest.mark.trio
async def test_body_exception_propagates_unchanged_and_frees_the_slot(
    backend: RedisBackend,
) -> None:
    queue = Queue(backend)
    with pytest.raises(KeyError, match="boom"):
        async with queue.slot("support"):
            raise KeyError("boom")
    assert await queue.in_use("support") == 0


@pytest.mark.trio
async def test_cancelling_a_holder_frees_its_slot(backend: RedisBackend) -> None:
    queue = Queue(backend)
    with trio.move_on_after(0.2) as scope:
        async with queue.slot("support"):
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert await queue.in_use("support") == 0


@pytest.mark.trio
async def test_heartbeat_keeps_a_slot_held_past_its_lease(redis_server: RedisServer) -> None:
    async with RedisBackend(
        redis_server.url, key_prefix=unique_prefix(), lease_ttl=0.6, heartbeat_interval=0.1
    ) as backend:
        queue = Queue(backend)
        async with queue.slot("support"):
            # Three leases long: without renewal the slot would have been reaped.
            with pytest.raises(QueueTimeoutError):
                async with queue.slot("support", timeout=1.8):
                    pass
            assert await queue.in_use("support") == 1


async def _delete_prefix(url: str, prefix: str) -> None:
    client = coredis.Redis.from_url(url)
    async with client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        assert keys, "expected the queue to have keys in Redis"
        await client.delete(keys)


@pytest.mark.trio
async def test_lost_redis_state_cancels_the_holder_and_requeues_the_waiter(
    redis_server: RedisServer,
) -> None:
    """As after a Redis restart without persistence: nobody may assume the slot is still theirs."""
    prefix = unique_prefix()
    holder_cancelled = False
    served: list[str] = []
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def hold_while_redis_forgets(queue: Queue, nursery: trio.Nursery) -> None:
        nonlocal holder_cancelled
        async with queue.slot("support"):
            await nursery.start(
                partial(_join_then_hold, tracer_provider=provider),
                queue.backend,
                "support",
                "waiter",
                served,
            )
            # The heartbeat may notice the loss while the deletion is still
            # returning, so the cancellation can land in either await.
            try:
                await _delete_prefix(redis_server.url, prefix)
                await trio.sleep_forever()
            except trio.Cancelled:
                holder_cancelled = True
                raise

    async with RedisBackend(
        redis_server.url, key_prefix=prefix, lease_ttl=2.0, heartbeat_interval=0.1
    ) as backend:
        queue = Queue(backend)
        with trio.fail_after(GUARD):
            async with trio.open_nursery() as nursery:
                with pytest.raises(QueueLeaseLost) as caught:
                    await hold_while_redis_forgets(queue, nursery)
    assert holder_cancelled
    assert caught.value.queue_id == "support"
    assert served == ["waiter"]
    # The waiter's span says it lost its place and lined up again (docs/queues.md).
    (waited,) = exporter.get_finished_spans()
    assert [event.name for event in waited.events] == ["queue.requeued"]
    assert (waited.attributes or {})["queue.result"] == "acquired"


@pytest.mark.trio
async def test_span_carries_depth_from_redis(backend: RedisBackend) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    queue = Queue(backend, tracer_provider=provider)
    async with queue.slot("support", item_id="call-1"):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "queue.wait_and_acquire"
    assert dict(span.attributes or {}) == {
        "queue.id": "support",
        "queue.item_id": "call-1",
        "queue.depth": 1,
        "queue.max_concurrent": 1,
        "queue.result": "acquired",
    }


@pytest.mark.trio
async def test_backend_outside_its_block_refuses_to_work(redis_server: RedisServer) -> None:
    backend = RedisBackend(redis_server.url, key_prefix=unique_prefix())
    with pytest.raises(RuntimeError, match="async with"):
        async with Queue(backend).slot("support"):
            pass


@pytest.mark.parametrize(
    ("lease_ttl", "heartbeat_interval"), [(0.0, None), (1.0, 1.0), (1.0, 0.0), (float("inf"), 1)]
)
def test_lease_settings_are_checked(lease_ttl: float, heartbeat_interval: float | None) -> None:
    with pytest.raises(ValueError):
        RedisBackend(
            "redis://127.0.0.1:1/0", lease_ttl=lease_ttl, heartbeat_interval=heartbeat_interval
        )


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
@pytest.mark.anyio
async def test_redis_backend_runs_on_both_anyio_backends(
    redis_server: RedisServer, anyio_backend: str
) -> None:
    served: list[str] = []
    async with RedisBackend(redis_server.url, key_prefix=unique_prefix()) as backend:
        queue = Queue(backend)
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as task_group, queue.slot("support"):
                for number in range(3):
                    await task_group.start(
                        _join_then_hold, backend, "support", f"c{number}", served
                    )
    assert served == ["c0", "c1", "c2"]


@pytest.mark.trio
async def test_exceptions_leave_the_backend_block_unwrapped(redis_server: RedisServer) -> None:
    with pytest.raises(KeyError, match="app failed"):
        async with RedisBackend(redis_server.url, key_prefix=unique_prefix()):
            raise KeyError("app failed")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.trio
async def test_unreachable_redis_fails_at_start_instead_of_hanging() -> None:
    with trio.fail_after(GUARD), pytest.raises(coredis.exceptions.ConnectionError):
        async with RedisBackend(f"redis://127.0.0.1:{_closed_port()}/0"):
            pytest.fail("entered a backend without Redis")
