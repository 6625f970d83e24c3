"""The load-balancer contract, held by the in-memory and the Redis backend alike."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio
import trio.testing

from genesis_trio.group import InMemoryLoadBalancer, LoadBalancerBackend, RedisLoadBalancer
from redis_server import RedisServer, redis_server, unique_prefix

__all__ = ["redis_server"]  # the session fixture, re-exported for pytest

Opener = Callable[[], AbstractAsyncContextManager[LoadBalancerBackend]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def open_balancer(request: pytest.FixtureRequest) -> Opener:
    if request.param == "memory":
        return InMemoryLoadBalancer
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = unique_prefix()
    return lambda: RedisLoadBalancer(server.url, key_prefix=prefix)


@pytest.mark.trio
async def test_satisfies_the_protocol(open_balancer: Opener) -> None:
    async with open_balancer() as balancer:
        assert isinstance(balancer, LoadBalancerBackend)


@pytest.mark.trio
async def test_counts_go_up_and_down_but_never_below_zero(open_balancer: Opener) -> None:
    async with open_balancer() as balancer:
        assert await balancer.count("gw1") == 0
        assert await balancer.increment("gw1") == 1
        assert await balancer.increment("gw1") == 2
        assert await balancer.count("gw1") == 2
        assert await balancer.decrement("gw1") == 1
        assert await balancer.decrement("gw1") == 0
        assert await balancer.decrement("gw1") == 0
        assert await balancer.count("gw1") == 0
        assert await balancer.increment("gw1") == 1


@pytest.mark.trio
async def test_least_loaded_prefers_fewest_then_earliest(open_balancer: Opener) -> None:
    async with open_balancer() as balancer:
        assert await balancer.least_loaded(["a", "b", "c"]) == "a"
        await balancer.increment("a")
        await balancer.increment("b")
        assert await balancer.least_loaded(["a", "b", "c"]) == "c"
        await balancer.increment("c")
        await balancer.increment("a")
        assert await balancer.least_loaded(["a", "b", "c"]) == "b"
        assert await balancer.least_loaded(["c", "b"]) == "c"
        with pytest.raises(ValueError):
            await balancer.least_loaded([])


@pytest.mark.trio
async def test_track_counts_the_block(open_balancer: Opener) -> None:
    async with open_balancer() as balancer:
        async with balancer.track("gw1"):
            assert await balancer.count("gw1") == 1
            async with balancer.track("gw1"):
                assert await balancer.count("gw1") == 2
            assert await balancer.count("gw1") == 1
        assert await balancer.count("gw1") == 0


@pytest.mark.trio
async def test_track_comes_down_after_an_exception(open_balancer: Opener) -> None:
    async with open_balancer() as balancer:
        with pytest.raises(KeyError, match="leg failed"):
            async with balancer.track("gw1"):
                raise KeyError("leg failed")
        assert await balancer.count("gw1") == 0


@pytest.mark.trio
async def test_track_comes_down_when_the_ring_is_cancelled(open_balancer: Opener) -> None:
    async with open_balancer() as balancer:
        inside = trio.Event()

        async def ringing_leg() -> None:
            async with balancer.track("gw1"):
                inside.set()
                await trio.sleep_forever()

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ringing_leg)
                await inside.wait()
                assert await balancer.count("gw1") == 1
                nursery.cancel_scope.cancel()
        assert await balancer.count("gw1") == 0


@pytest.mark.trio
async def test_track_entered_already_cancelled_leaves_nothing_behind(
    open_balancer: Opener,
) -> None:
    async with open_balancer() as balancer:
        with trio.CancelScope() as scope:
            scope.cancel()
            async with balancer.track("gw1"):
                await trio.lowlevel.checkpoint()
        assert await balancer.count("gw1") == 0


@pytest.mark.trio
async def test_many_concurrent_legs_all_come_down(open_balancer: Opener) -> None:
    async with open_balancer() as balancer:
        all_in = trio.Event()
        inside = 0

        async def leg() -> None:
            nonlocal inside
            async with balancer.track("gw1"):
                inside += 1
                if inside == 20:
                    all_in.set()
                await trio.sleep_forever()

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(leg)
                await all_in.wait()
                assert await balancer.count("gw1") == 20
                nursery.cancel_scope.cancel()
        assert await balancer.count("gw1") == 0


class _CountingOnly(LoadBalancerBackend):
    """A custom backend that implements only the four counting coroutines."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    async def increment(self, key: str) -> int:
        await trio.lowlevel.checkpoint()
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    async def decrement(self, key: str) -> int:
        await trio.lowlevel.checkpoint()
        self.counts[key] = max(0, self.counts.get(key, 0) - 1)
        return self.counts[key]

    async def least_loaded(self, keys: object) -> str:
        raise NotImplementedError

    async def count(self, key: str) -> int:
        return self.counts.get(key, 0)


@pytest.mark.trio
async def test_custom_backend_inherits_a_cancellation_safe_track() -> None:
    balancer = _CountingOnly()
    with trio.CancelScope() as scope:
        scope.cancel()
        # The increment and the decrement both have checkpoints; both are shielded.
        async with balancer.track("gw1"):
            assert balancer.counts == {"gw1": 1}
            await trio.lowlevel.checkpoint()
    assert balancer.counts == {"gw1": 0}
