"""RedisLoadBalancer across instances: shared counts, crashed processes, a lost Redis link."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest
import trio
from anyio.streams.buffered import BufferedByteReceiveStream

from genesis_trio.group import RedisLoadBalancer
from redis_server import RedisServer, redis_server, unique_prefix
from waiting import wait_until

__all__ = ["redis_server"]  # the session fixture, re-exported for pytest

pytestmark = pytest.mark.redis

GUARD = 30


@pytest.mark.trio
async def test_instances_share_counts(redis_server: RedisServer) -> None:
    prefix = unique_prefix()
    async with (
        RedisLoadBalancer(redis_server.url, key_prefix=prefix) as first,
        RedisLoadBalancer(redis_server.url, key_prefix=prefix) as second,
    ):
        assert first.instance_id != second.instance_id
        async with first.track("gw1"):
            assert await second.count("gw1") == 1
            assert await second.least_loaded(["gw1", "gw2"]) == "gw2"
            async with second.track("gw2"), second.track("gw2"):
                assert await first.least_loaded(["gw2", "gw1"]) == "gw1"
        assert await second.count("gw1") == 0


@pytest.mark.trio
async def test_decrement_only_undoes_this_instances_increments(
    redis_server: RedisServer,
) -> None:
    prefix = unique_prefix()
    async with (
        RedisLoadBalancer(redis_server.url, key_prefix=prefix) as first,
        RedisLoadBalancer(redis_server.url, key_prefix=prefix) as second,
    ):
        await first.increment("gw1")
        assert await second.decrement("gw1") == 1
        assert await first.decrement("gw1") == 0


@pytest.mark.trio
async def test_leaving_retires_what_the_instance_counted(redis_server: RedisServer) -> None:
    prefix = unique_prefix()
    async with RedisLoadBalancer(redis_server.url, key_prefix=prefix) as observer:
        async with RedisLoadBalancer(redis_server.url, key_prefix=prefix) as leaving:
            await leaving.increment("gw1")
            assert await observer.count("gw1") == 1
        assert await observer.count("gw1") == 0


_CRASHING_INSTANCE = textwrap.dedent(
    """
    import sys, anyio
    from genesis_trio.group import RedisLoadBalancer

    INSTANCE_TTL = float(sys.argv[3])

    async def main():
        async with RedisLoadBalancer(
            sys.argv[1], key_prefix=sys.argv[2], instance_ttl=INSTANCE_TTL, heartbeat_interval=0.2
        ) as balancer:
            await balancer.increment("gw1")
            print("counted", flush=True)
            await anyio.sleep_forever()

    anyio.run(main, backend="trio")
    """
)


def count_is_zero(balancer: RedisLoadBalancer, key: str) -> Callable[[], Awaitable[bool]]:
    async def count_is_zero() -> bool:
        return await balancer.count(key) == 0

    return count_is_zero


@pytest.mark.trio
async def test_a_crashed_instance_stops_counting_after_its_ttl(redis_server: RedisServer) -> None:
    prefix = unique_prefix()
    # Long enough that a loaded machine cannot let the lease lapse between the
    # kill and the next look; short enough to keep the test quick.
    instance_ttl = 4.0
    process = await anyio.open_process(
        [sys.executable, "-c", _CRASHING_INSTANCE, redis_server.url, prefix, str(instance_ttl)],
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with RedisLoadBalancer(redis_server.url, key_prefix=prefix) as observer:
            with trio.fail_after(GUARD):
                line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 100)
            assert line == b"counted"
            assert await observer.count("gw1") == 1
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
            # The kill closed its Redis connection, yet the count stays until the
            # lease (renewed at most 0.2s before the kill) runs out...
            assert await observer.count("gw1") == 1
            # ...and then it goes, with nobody left to retire it. The count is read
            # against the leases' expiry times: nothing announces the moment it drops,
            # so the test looks again until it has.
            await wait_until(
                count_is_zero(observer, "gw1"), within=instance_ttl + GUARD, interval=0.1
            )
            assert await observer.least_loaded(["gw1", "gw2"]) == "gw1"
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                os.kill(process.pid, signal.SIGKILL)
            await process.wait()
            await process.aclose()


class CuttableProxy:
    """A loopback TCP proxy in front of Redis whose link can be cut and restored."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._connected = True
        self._links: set[anyio.CancelScope] = set()
        self.port = 0

    def cut(self) -> None:
        self._connected = False
        for link in self._links:
            link.cancel()

    def restore(self) -> None:
        self._connected = True

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        await listener.serve(self._relay)

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            if not self._connected:
                return
            with anyio.CancelScope() as link:
                self._links.add(link)
                try:
                    upstream = await anyio.connect_tcp("127.0.0.1", self._target_port)
                    async with upstream, anyio.create_task_group() as task_group:
                        task_group.start_soon(_pump, client, upstream)
                        task_group.start_soon(_pump, upstream, client)
                finally:
                    self._links.discard(link)


async def _pump(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
    try:
        async for chunk in source:
            await sink.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass
    await sink.send_eof()


@asynccontextmanager
async def cuttable_proxy(target_port: int) -> AsyncIterator[CuttableProxy]:
    proxy = CuttableProxy(target_port)
    async with anyio.create_task_group() as task_group:
        await task_group.start(proxy.serve)
        yield proxy
        task_group.cancel_scope.cancel()


@pytest.mark.trio
async def test_count_comes_down_after_redis_was_unreachable_at_hang_up(
    redis_server: RedisServer,
) -> None:
    prefix = unique_prefix()
    with trio.fail_after(GUARD):
        async with (
            cuttable_proxy(redis_server.port) as proxy,
            RedisLoadBalancer(redis_server.url, key_prefix=prefix) as observer,
            RedisLoadBalancer(
                f"redis://127.0.0.1:{proxy.port}/0",
                key_prefix=prefix,
                heartbeat_interval=0.1,
                cleanup_timeout=1.0,
            ) as balancer,
        ):
            async with balancer.track("gw1"):
                assert await observer.count("gw1") == 1
                proxy.cut()
            # The call ended while Redis was unreachable: still counted...
            assert await observer.count("gw1") == 1
            proxy.restore()
            # ...until the heartbeat (every 0.1s) gets through and retries the
            # decrement. Redis is another process: its state can only be polled.
            await wait_until(count_is_zero(observer, "gw1"), within=GUARD)


@pytest.mark.trio
async def test_exceptions_leave_the_balancer_block_unwrapped(redis_server: RedisServer) -> None:
    with pytest.raises(KeyError, match="app failed"):
        async with RedisLoadBalancer(redis_server.url, key_prefix=unique_prefix()):
            raise KeyError("app failed")
