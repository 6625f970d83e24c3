"""Several processes compete for one Redis-backed queue: FIFO, the bound, and dead holders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import pytest
import trio
from anyio.streams.buffered import BufferedByteReceiveStream
from queue_signals import JoinSignal

from genesis_trio.queue import Queue, RedisBackend
from redis_server import RedisServer, redis_server, unique_prefix

__all__ = ["redis_server"]  # the session fixture, re-exported for pytest

pytestmark = pytest.mark.redis

WORKER = Path(__file__).with_name("queue_worker.py")
# Process start-up (interpreter, imports, Redis connection) is the slow part.
GUARD = 60


@dataclass
class Worker:
    name: str
    process: anyio.abc.Process
    lines: BufferedByteReceiveStream

    async def expect(self, line: str) -> None:
        received = await self.lines.receive_until(b"\n", 4096)
        assert received.decode().strip() == line, f"{self.name} said {received!r}"

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(f"{line}\n".encode())


@asynccontextmanager
async def workers(
    server: RedisServer, prefix: str, names: Sequence[str], *options: str
) -> AsyncIterator[list[Worker]]:
    """Start one worker process per name; kill (by PID) any still running at the end."""
    started: list[Worker] = []
    try:
        for name in names:
            process = await anyio.open_process(
                [sys.executable, str(WORKER), server.url, prefix, "support", name, *options],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,
            )
            assert process.stdout is not None
            started.append(Worker(name, process, BufferedByteReceiveStream(process.stdout)))
        for worker in started:
            await worker.expect("ready")
        yield started
    finally:
        with anyio.CancelScope(shield=True):
            for worker in started:
                if worker.process.returncode is None:
                    os.kill(worker.process.pid, signal.SIGKILL)
                await worker.process.wait()
                await worker.process.aclose()


async def _read_log(backend: RedisBackend, prefix: str) -> list[str]:
    entries = await backend.client.lrange(f"{prefix}:log", 0, -1)
    return [entry.decode() if isinstance(entry, bytes) else str(entry) for entry in entries]


async def _run_competition(
    server: RedisServer, prefix: str, max_concurrent: int, count: int, *worker_options: str
) -> list[str]:
    """Workers join in a known order behind slots the test holds, then race for them."""
    names = [f"w{number}" for number in range(count)]
    options = ("--max-concurrent", str(max_concurrent), "--count", str(count), *worker_options)
    async with RedisBackend(server.url, key_prefix=prefix) as backend:
        queue = Queue(backend)
        with trio.fail_after(GUARD):
            async with workers(server, prefix, names, *options) as competitors:
                async with trio.open_nursery() as nursery:
                    release = trio.Event()
                    for _ in range(max_concurrent):
                        await nursery.start(_hold_until, queue, max_concurrent, release)
                    for worker in competitors:
                        await worker.send("go")
                        await worker.expect("joined")
                    assert await queue.depth("support") == count
                    release.set()
                for worker in competitors:
                    assert await worker.process.wait() == 0
        log = await _read_log(backend, prefix)
        assert (await queue.depth("support"), await queue.in_use("support")) == (0, 0)
    return log


async def _hold_until(
    queue: Queue,
    max_concurrent: int,
    release: trio.Event,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with queue.slot("support", max_concurrent=max_concurrent):
        task_status.started()
        await release.wait()


@pytest.mark.trio
async def test_processes_are_served_one_at_a_time_in_arrival_order(
    redis_server: RedisServer,
) -> None:
    log = await _run_competition(redis_server, unique_prefix(), 1, 4, "--hold", "0.05")
    expected: list[str] = []
    for number in range(4):
        expected += [f"acquire w{number} 1", f"release w{number}"]
    assert log == expected


@pytest.mark.trio
async def test_processes_never_exceed_the_bound(redis_server: RedisServer) -> None:
    max_concurrent, count = 2, 5
    log = await _run_competition(
        redis_server, unique_prefix(), max_concurrent, count, "--batch", str(max_concurrent)
    )
    acquired = [entry.split() for entry in log if entry.startswith("acquire")]
    holders_seen = [int(holders) for _, _, holders in acquired]
    assert max(holders_seen) == max_concurrent
    assert all(holders <= max_concurrent for holders in holders_seen)
    assert sorted(name for _, name, _ in acquired) == [f"w{number}" for number in range(count)]
    assert sorted(entry for entry in log if entry.startswith("release")) == [
        f"release w{number}" for number in range(count)
    ]
    # Two slots are granted together, so two neighbours may report in either
    # order; nobody overtakes by more than that.
    for position, (_, name, _) in enumerate(acquired):
        assert abs(position - int(name[1:])) <= max_concurrent - 1


@pytest.mark.trio
async def test_a_killed_holder_frees_its_slot_when_its_lease_expires(
    redis_server: RedisServer,
) -> None:
    prefix = unique_prefix()
    lease_ttl = 1.0
    served_at: list[float] = []
    async with RedisBackend(
        redis_server.url, key_prefix=prefix, lease_ttl=3.0, heartbeat_interval=0.2
    ) as backend:

        async def waiter(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            queue = Queue(JoinSignal(backend, lambda _depth: task_status.started()))
            async with queue.slot("support"):
                served_at.append(trio.current_time())

        with trio.fail_after(GUARD):
            options = ("--hang", "--lease-ttl", str(lease_ttl), "--heartbeat", "0.2")
            async with workers(redis_server, prefix, ["doomed"], *options) as (doomed,):
                await doomed.send("go")
                await doomed.expect("joined")
                await doomed.expect("acquired")
                async with trio.open_nursery() as nursery:
                    await nursery.start(waiter)
                    assert served_at == []
                    os.kill(doomed.process.pid, signal.SIGKILL)
                    killed_at = trio.current_time()
                    assert await doomed.process.wait() == -signal.SIGKILL
    waited = served_at[0] - killed_at
    # Its last heartbeat was at most 0.2s before the kill, so the lease ran out
    # at least 0.8s after it; the waiter polls every 0.2s.
    assert 0.5 <= waited <= lease_ttl + 0.2 + 1.0
