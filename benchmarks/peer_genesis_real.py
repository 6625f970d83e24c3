"""The Genesis side of :mod:`benchmarks.real_switch`; runs in benchmarks/.peer-venv.

Self-contained (stdlib + ``genesis``): the peer environment does not have
genesis_trio. One sample per process, one JSON line on stdout (the outbound
and memory servers first print ``{"port": N}`` once they listen). Every
handler is an ``async def`` (Genesis sends synchronous handlers through
``asyncio.to_thread``). Genesis's public API only, nothing patched:

- ``inbound-channel``: ``await Channel.create(inbound, dial_path)`` (Genesis
  sends ``events plain ALL``, ``api create_uuid``, ``filter Unique-ID``, then a
  blocking ``api originate ... &park()``) and ``await channel.hangup()``
  (``api uuid_kill``; it does not wait for the hangup event).
- ``inbound-raw``: ``bgapi originate {origination_uuid=U}...`` with a Job-UUID
  of our own, its BACKGROUND_JOB awaited through ``inbound.on``, then
  ``api uuid_kill U`` and its CHANNEL_HANGUP_COMPLETE awaited the same way.
- ``outbound``: ``genesis.Outbound(handler)`` (events and linger on, its
  defaults); the handler answers, plays the tone (blocking) and hangs up.
- ``mem-inbound`` / ``mem-outbound``: RSS with N idle ``Inbound`` connections /
  N live outbound sessions (their handlers wait).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import statistics
import time
import uuid
from typing import Any

import genesis

PASSWORD = "ClueCon"


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    path = f"/proc/{pid or os.getpid()}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Window:
    """Wall clock, our CPU and FreeSWITCH's CPU between start() and stop()."""

    def __init__(self, fs_pid: int | None) -> None:
        self.fs_pid = fs_pid

    def start(self) -> None:
        self.t0, self.cpu0 = time.perf_counter(), cpu_seconds()
        self.fs0 = cpu_seconds(self.fs_pid) if self.fs_pid else None

    def stop(self, count: int) -> dict[str, Any]:
        seconds = time.perf_counter() - self.t0
        cpu = cpu_seconds() - self.cpu0
        result: dict[str, Any] = {
            "count": count,
            "seconds": seconds,
            "rate": count / seconds,
            "cpu_ms": 1000 * cpu / count,
            "cpu_share": cpu / seconds,
        }
        if self.fs_pid and self.fs0 is not None:
            fs = cpu_seconds(self.fs_pid) - self.fs0
            result["fs_cpu_ms"] = 1000 * fs / count
            result["fs_cpu_share"] = fs / seconds
        return result


async def in_parallel(calls: int, concurrency: int, one: Any) -> None:
    counter = iter(range(calls))

    async def worker() -> None:
        for _ in counter:
            await one()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def bench_channel(args: argparse.Namespace) -> dict[str, Any]:
    from genesis.channel import Channel

    async with genesis.Inbound(args.host, args.port, PASSWORD) as inbound:

        async def one() -> None:
            channel = await Channel.create(inbound, args.dial)
            await channel.hangup()

        await one()  # warm-up, outside the window
        window = Window(args.fs_pid)
        window.start()
        await in_parallel(args.calls, args.concurrency, one)
        return window.stop(args.calls)


async def bench_raw(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    jobs: dict[str, asyncio.Future[Any]] = {}
    hangups: dict[str, asyncio.Future[Any]] = {}

    async def on_job(event: Any) -> None:
        future = jobs.pop(event.get("Job-UUID"), None)
        if future is not None and not future.done():
            future.set_result(event)

    async def on_hangup(event: Any) -> None:
        future = hangups.pop(event.get("Unique-ID"), None)
        if future is not None and not future.done():
            future.set_result(event)

    inbound = genesis.Inbound(args.host, args.port, PASSWORD)
    inbound.on("BACKGROUND_JOB", on_job)
    inbound.on("CHANNEL_HANGUP_COMPLETE", on_hangup)
    async with inbound:
        await inbound.send("events plain BACKGROUND_JOB CHANNEL_HANGUP_COMPLETE")

        async def one() -> None:
            leg, job = str(uuid.uuid4()), str(uuid.uuid4())
            jobs[job] = loop.create_future()
            hangups[leg] = loop.create_future()
            await inbound.send(
                f"bgapi originate {{origination_uuid={leg}}}{args.dial} &park()\nJob-UUID: {job}"
            )
            result = await asyncio.wait_for(jobs[job], 30)
            if not str(result.body or "").startswith("+OK"):
                raise RuntimeError(f"originate failed: {result.body!r}")
            await inbound.send(f"api uuid_kill {leg} NORMAL_CLEARING")
            await asyncio.wait_for(hangups[leg], 30)

        await one()
        window = Window(args.fs_pid)
        window.start()
        await in_parallel(args.calls, args.concurrency, one)
        return window.stop(args.calls)


async def bench_outbound(args: argparse.Namespace) -> dict[str, Any]:
    total = args.calls + args.warmup
    finished = 0
    latencies: list[float] = []
    setups: list[float] = []
    window = Window(args.fs_pid)
    done = asyncio.Event()

    async def handler(session: Any) -> None:
        nonlocal finished
        began, began_wall = time.perf_counter(), time.time()
        created = session.context.get("Caller-Channel-Created-Time")
        channel = session.channel
        await channel.answer()
        await channel.playback(args.media)
        await channel.hangup()
        ended = time.perf_counter()
        finished += 1
        if finished == args.warmup:
            window.start()
        elif finished > args.warmup:
            latencies.append(ended - began)
            if created:
                setups.append(began_wall - int(created) / 1e6)
            if finished == total:
                done.set()

    server = genesis.Outbound(handler, "127.0.0.1", 0)
    await server.start(block=False)
    assert server.server is not None
    port = server.server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    try:
        await asyncio.wait_for(done.wait(), args.timeout)
        result = window.stop(args.calls)
    finally:
        with contextlib.suppress(Exception):
            await server.stop()
    result.update(latency_summary(latencies, setups))
    return result


def latency_summary(latencies: list[float], setups: list[float]) -> dict[str, Any]:
    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "handler_p50_ms": pct(latencies, 0.5),
        "handler_p95_ms": pct(latencies, 0.95),
        "setup_p50_ms": pct(setups, 0.5),
        "setup_p95_ms": pct(setups, 0.95),
        "handler_mean_ms": 1000 * statistics.fmean(latencies) if latencies else None,
    }


async def bench_mem_inbound(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit(args.count + 256)
    release = asyncio.Event()

    async def hold(opened: asyncio.Future[None]) -> None:
        async with genesis.Inbound(args.host, args.port, PASSWORD):
            opened.set_result(None)
            await release.wait()

    async def open_one() -> asyncio.Task[None]:
        opened = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(hold(opened))
        await opened
        return task

    tasks = [await open_one()]
    gc.collect()
    first = rss_kib()
    for _ in range(args.count - 1):
        tasks.append(await open_one())
    gc.collect()
    last = rss_kib()
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "count": args.count,
        "rss_first_kib": first,
        "rss_last_kib": last,
        "kib_each": (last - first) / (args.count - 1),
    }


async def bench_mem_outbound(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit(args.count + 256)
    live = first = 0
    release = asyncio.Event()
    all_in = asyncio.Event()

    async def handler(session: Any) -> None:
        nonlocal live, first
        live += 1
        if live == 1:
            # The peer's warm-up call, alone: the baseline with one live session.
            gc.collect()
            first = rss_kib()
            return
        if live == args.count + 1:
            all_in.set()
        await release.wait()

    server = genesis.Outbound(handler, "127.0.0.1", 0)
    await server.start(block=False)
    assert server.server is not None
    print(json.dumps({"port": server.server.sockets[0].getsockname()[1]}), flush=True)
    try:
        await asyncio.wait_for(all_in.wait(), args.timeout)
        gc.collect()
        last = rss_kib()
        release.set()
        # Let the handlers return and the sessions close before stopping the server.
        for _ in range(600):
            if not server.tasks:
                break
            await asyncio.sleep(0.05)
    finally:
        with contextlib.suppress(BaseException):
            await server.stop()
    return {
        "count": args.count,
        "rss_first_kib": first,
        "rss_last_kib": last,
        "kib_each": (last - first) / (args.count - 1),
    }


BENCHES = {
    "inbound-channel": bench_channel,
    "inbound-raw": bench_raw,
    "outbound": bench_outbound,
    "mem-inbound": bench_mem_inbound,
    "mem-outbound": bench_mem_outbound,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="Genesis side of benchmarks.real_switch")
    parser.add_argument("bench", choices=sorted(BENCHES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fs-pid", type=int)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--dial", default="loopback/9002/default")
    parser.add_argument("--media", default="tone_stream://%(100,0,440)")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(BENCHES[args.bench](args), args.timeout + 10)

    result = asyncio.run(bounded())
    result["library"] = f"genesis {genesis.__version__}"
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
