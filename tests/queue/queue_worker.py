"""One competitor for a Redis-backed queue, run as its own process by the multi-process tests.

Protocol on stdio, one line each: the worker prints ``ready`` once connected,
joins the line when it reads ``go``, prints ``joined`` once Redis has it in
line and ``acquired`` once it holds a slot. Inside the slot it records
``acquire <name> <holders now>`` and ``release <name>`` in a Redis list, so the
test can check order and bound from Redis itself, across processes.

With ``--hang`` it never leaves the slot: the test kills it by PID. With
``--batch N`` it leaves only once the N-slot batch it was granted in is full
(or all ``--count`` competitors got in), so the bound is reached whatever the
machine's load, with no timing in the test.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio
import anyio.to_thread
from coredis import Redis
from queue_signals import JoinSignal

from genesis_trio.queue import Queue, RedisBackend


def _say(line: str) -> None:
    print(line, flush=True)


async def main(args: argparse.Namespace) -> None:
    async with RedisBackend(
        args.url,
        key_prefix=args.prefix,
        lease_ttl=args.lease_ttl,
        heartbeat_interval=args.heartbeat,
    ) as backend:
        client = backend.client
        queue = Queue(JoinSignal(backend, lambda _depth: _say("joined")))
        _say("ready")
        command = await anyio.to_thread.run_sync(sys.stdin.readline)
        if command.strip() != "go":
            raise SystemExit(f"expected 'go', got {command!r}")
        async with queue.slot(args.queue_id, max_concurrent=args.max_concurrent, item_id=args.name):
            holders = await client.incr(f"{args.prefix}:active")
            await client.rpush(f"{args.prefix}:log", [f"acquire {args.name} {holders}"])
            _say("acquired")
            if args.hang:
                await anyio.sleep_forever()
            if args.batch:
                await _wait_for_batch(client, args.prefix, args.batch, args.count)
            else:
                # Simulated work, long enough for the others to pile up behind.
                await anyio.sleep(args.hold)
            await client.decr(f"{args.prefix}:active")
            await client.rpush(f"{args.prefix}:log", [f"release {args.name}"])


async def _wait_for_batch(client: Redis[Any], prefix: str, batch: int, count: int) -> None:
    """Hold the slot until every slot of this worker's batch has been granted.

    Of any two holders, the earlier one's batch is always complete, so somebody
    can always leave: no deadlock, and the bound is reached in every batch. The
    last one in opens the batch's gate for all of it (a blocking pop, no polling).
    """
    position = await client.incr(f"{prefix}:granted")
    batch_start = (position - 1) // batch * batch
    batch_end = min(count, batch_start + batch)
    gate = f"{prefix}:batch-gate:{batch_end}"
    if position == batch_end:
        await client.rpush(gate, ["open"] * (batch_end - batch_start))
    await client.blpop([gate], timeout=60)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("queue_id")
    parser.add_argument("name")
    parser.add_argument("--max-concurrent", type=int, default=1)
    parser.add_argument("--hold", type=float, default=0.05)
    parser.add_argument("--lease-ttl", type=float, default=3.0)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    return parser.parse_args()


if __name__ == "__main__":
    anyio.run(main, _parse(), backend="trio")
