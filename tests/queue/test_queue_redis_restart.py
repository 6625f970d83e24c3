"""The Redis queue backend while its redis-server is killed (SIGKILL, by PID) and restarted.

Holders and waiters use two backends (two sets of connections, as two processes
would). The invariant checked is the queue's bound: at no moment do more bodies
run inside ``queue.slot(...)`` than ``max_concurrent``, whatever Redis lost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import anyio
import anyio.abc
import pytest
import trio
import trio.testing
from queue_signals import JoinSignal

from genesis_trio.group import RedisLoadBalancer
from genesis_trio.queue import Queue, QueueLeaseLost, RedisBackend
from redis_server import PrivateRedisServer, private_redis_server, unique_prefix

__all__ = ["private_redis_server"]  # the fixture, re-exported for pytest

pytestmark = [pytest.mark.redis, pytest.mark.trio]

GUARD = 60
MAX = 2
WAITERS = 10


class Bound:
    """Counts bodies inside the queue's slots and remembers the most at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0

    def enter(self) -> None:
        self.inside += 1
        self.most = max(self.most, self.inside)

    def leave(self) -> None:
        self.inside -= 1


async def _holder(
    queue: Queue,
    bound: Bound,
    outcomes: list[str],
    release: trio.Event,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    try:
        async with queue.slot("support", max_concurrent=MAX):
            bound.enter()
            try:
                task_status.started()
                await release.wait()
            finally:
                bound.leave()
        outcomes.append("released")
    except QueueLeaseLost:
        outcomes.append("lost")


async def _waiter(
    backend: RedisBackend,
    bound: Bound,
    served: list[int],
    number: int,
    *,
    max_concurrent: int = MAX,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    queue = Queue(JoinSignal(backend, lambda _depth: task_status.started()))
    async with queue.slot("support", max_concurrent=max_concurrent):
        bound.enter()
        try:
            served.append(number)
            # The body's work (not synchronisation): it holds the slot a moment, so that a
            # slot granted twice would show as two bodies inside at once.
            await trio.sleep(0.05)
        finally:
            bound.leave()


async def _restart_with_holders_and_waiters(
    server: PrivateRedisServer, *, lease_ttl: float, release_holders: bool
) -> tuple[Bound, list[str], list[int]]:
    prefix = unique_prefix()
    bound = Bound()
    outcomes: list[str] = []
    served: list[int] = []
    release = trio.Event()
    with trio.fail_after(GUARD):
        async with (
            # The waiters poll more often than the holders renew: after the
            # restart they are back first, which is when a slot could go twice.
            RedisBackend(
                server.url, key_prefix=prefix, lease_ttl=lease_ttl, heartbeat_interval=0.6
            ) as holders_backend,
            RedisBackend(
                server.url, key_prefix=prefix, lease_ttl=lease_ttl, heartbeat_interval=0.1
            ) as waiters_backend,
            trio.open_nursery() as nursery,
        ):
            holders = Queue(holders_backend)
            for _ in range(MAX):
                await nursery.start(_holder, holders, bound, outcomes, release)
            for number in range(WAITERS):
                await nursery.start(_waiter, waiters_backend, bound, served, number)
            server.restart()
            if release_holders:
                # With the data kept, the holders hold on for longer than a
                # lease (renewing across the restart), and nobody is served
                # until they let go. Real time passing is the point here (a lease runs out on
                # Redis's clock), not a wait for something to happen: nothing must happen.
                await trio.sleep(lease_ttl + 1)
                assert served == []
                assert await Queue(holders_backend).in_use("support") == MAX
                release.set()
    return bound, outcomes, served


async def test_restart_without_persistence_grants_no_slot_twice(
    private_redis_server: Callable[..., PrivateRedisServer],
) -> None:
    server = private_redis_server(appendonly=False)
    bound, outcomes, served = await _restart_with_holders_and_waiters(
        server, lease_ttl=2.0, release_holders=False
    )
    # Redis forgot them: both holders learned it (their bodies were cancelled)
    # before any waiter was granted a slot.
    assert outcomes == ["lost", "lost"]
    assert sorted(served) == list(range(WAITERS))
    assert bound.most == MAX


async def test_restart_with_persistence_keeps_the_holders(
    private_redis_server: Callable[..., PrivateRedisServer],
) -> None:
    server = private_redis_server(appendonly=True)
    bound, outcomes, served = await _restart_with_holders_and_waiters(
        server, lease_ttl=5.0, release_holders=True
    )
    assert outcomes == ["released", "released"]
    # Their places in line were kept too (two slots free at once: either of a pair first).
    assert sorted(served) == list(range(WAITERS))
    assert set(served[:MAX]) == set(range(MAX))
    assert bound.most == MAX


async def test_leaving_the_backend_while_redis_is_down_is_bounded(
    private_redis_server: Callable[..., PrivateRedisServer],
) -> None:
    server = private_redis_server()
    caught: list[BaseException] = []
    with trio.fail_after(GUARD):
        async with RedisBackend(
            server.url, key_prefix=unique_prefix(), lease_ttl=2.0, cleanup_timeout=1.0
        ) as backend:
            queue = Queue(backend)
            async with trio.open_nursery() as nursery:

                async def hold(*, task_status: anyio.abc.TaskStatus[None]) -> None:
                    try:
                        async with queue.slot("support"):
                            task_status.started()
                            await trio.sleep_forever()
                    except BaseException as exc:
                        caught.append(exc)
                        raise

                await nursery.start(hold)
                await nursery.start(
                    functools.partial(_waiter, backend, Bound(), [], 0, max_concurrent=1)
                )
                await trio.testing.wait_all_tasks_blocked()
                # Redis is gone for good: leaving costs no more than the
                # cleanup deadlines, whatever the holder and the waiter were doing.
                server.kill()
                nursery.cancel_scope.cancel()
    # The holder saw its cancellation or the lost lease, never an exception group.
    assert len(caught) == 1
    assert not isinstance(caught[0], BaseExceptionGroup)


async def test_a_caller_deadline_while_redis_is_down_raises_no_group(
    private_redis_server: Callable[..., PrivateRedisServer],
) -> None:
    server = private_redis_server()
    with trio.fail_after(GUARD):
        with trio.move_on_after(1.0) as deadline:
            async with RedisBackend(server.url, key_prefix=unique_prefix()):
                server.kill()
                await trio.sleep_forever()
    assert deadline.cancelled_caught


async def test_leaving_a_load_balancer_while_redis_is_down_is_bounded(
    private_redis_server: Callable[..., PrivateRedisServer],
) -> None:
    server = private_redis_server()
    with trio.fail_after(GUARD):
        async with (
            RedisLoadBalancer(
                server.url, key_prefix=unique_prefix(), cleanup_timeout=1.0
            ) as balancer,
            balancer.track("gw1"),
        ):
            server.kill()
    # Restarted (empty), the counts are simply gone; nothing of ours hangs on.
    server.start()
    async with RedisLoadBalancer(server.url, key_prefix=unique_prefix()) as balancer:
        assert await balancer.count("gw1") == 0
