"""One competitor for a Redis-backed queue, run as its own process by the multi-process tests.

Protocol on stdio, one line each: the worker prints ``ready`` once connected,
joins the line when it reads ``go``, prints ``joined`` once Redis has it in
line and ``acquired`` once it holds a slot. Inside the slot it records
``acquire <name> <holders now>`` and ``release <name>`` in a Redis list, so the
test can check order and bound from Redis itself, across processes.

With ``--hang`` it never leaves the slot: the test kills it by PID.
"""

from __future__ import annotations

import argparse
import sys

import anyio
import anyio.to_thread
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
            # Simulated work, long enough for the others to pile up behind.
            await anyio.sleep(args.hold)
            await client.decr(f"{args.prefix}:active")
            await client.rpush(f"{args.prefix}:log", [f"release {args.name}"])


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
    return parser.parse_args()


if __name__ == "__main__":
    anyio.run(main, _parse(), backend="trio")
