"""Callers wait for a free agent: one FIFO queue, one slot per agent.

Six callers ring a support line staffed by two agents. Each caller is a real
call (loopback/9002/default: answered and parked) that waits in line (first
come, first served) for at most a few seconds, then talks to an agent, who is
free again as soon as the call ends, however it ends.

    uv run python examples/call_queue.py                                 # in memory
    uv run python examples/call_queue.py --redis redis://127.0.0.1:6379/0
    uv run python examples/call_queue.py --host H --port P --password PW # a real switch

Without --host the calls go to the built-in fake FreeSWITCH.

With --redis the line lives in Redis: start the example in two terminals at
once and the callers of both share the same two agents, in arrival order.
In a real app the ``async with`` block would wrap the bridge to the agent in
an outbound session handler.
"""

from __future__ import annotations

import argparse
from contextlib import AsyncExitStack
from dataclasses import dataclass

import trio

from genesis_trio import Channel, Inbound
from genesis_trio.queue import (
    InMemoryBackend,
    Queue,
    QueueBackend,
    QueueTimeoutError,
    RedisBackend,
)
from genesis_trio.testing import FakeFreeSWITCH

LINE = "support"


@dataclass(frozen=True)
class Caller:
    name: str
    arrives_after: float
    patience: float
    talks_for: float


CALLERS = [
    Caller("alice", 0.0, 5.0, 1.5),
    Caller("bob", 0.1, 5.0, 1.0),
    Caller("carol", 0.2, 5.0, 2.0),
    Caller("dave", 0.3, 0.5, 1.0),  # impatient: hangs up before an agent is free
    Caller("erin", 0.4, 5.0, 0.5),
    Caller("frank", 0.5, 5.0, 0.5),
]


async def call(client: Inbound, queue: Queue, caller: Caller, agents: int, started: float) -> None:
    def say(message: str) -> None:
        print(f"{trio.current_time() - started:5.1f}s  {caller.name:<6} {message}", flush=True)

    await trio.sleep(caller.arrives_after)
    channel = await Channel.create(
        client, "loopback/9002/default", {"origination_caller_id_name": caller.name}, timeout=30
    )
    say(f"calls ({await queue.depth(LINE)} already waiting)")
    try:
        async with queue.slot(
            LINE, max_concurrent=agents, timeout=caller.patience, item_id=caller.name
        ) as slot:
            say(f"talks to an agent after waiting {slot.waited:.1f}s")
            await trio.sleep(caller.talks_for)  # in a real app: bridge to the agent
        say("hangs up; the agent is free")
    except QueueTimeoutError:
        say(f"gave up after {caller.patience:.1f}s in line")
    finally:
        await channel.hangup()


async def run(client: Inbound, backend: QueueBackend, agents: int) -> None:
    queue = Queue(backend)
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for caller in CALLERS:
            nursery.start_soon(call, client, queue, caller, agents, started)
    print(f"line empty: {await queue.depth(LINE)} waiting, {await queue.in_use(LINE)} talking")


async def main(
    host: str | None, port: int, password: str, redis_url: str | None, agents: int
) -> None:
    async with AsyncExitStack() as stack:
        if host is None:
            fake = await stack.enter_async_context(FakeFreeSWITCH(password=password).running())
            host, port = fake.host, fake.port
        client = await stack.enter_async_context(Inbound(host, port, password))
        if redis_url is None:
            await run(client, InMemoryBackend(), agents)
            return
        backend = await stack.enter_async_context(
            RedisBackend(redis_url, key_prefix="genesis_trio:example")
        )
        await run(client, backend, agents)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", help="a real FreeSWITCH (default: the built-in fake)")
    parser.add_argument("--port", type=int, default=8021, help="ESL port (default 8021)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    parser.add_argument("--redis", metavar="URL", help="keep the line in Redis at this URL")
    parser.add_argument("--agents", type=int, default=2, help="agents on duty (default 2)")
    args = parser.parse_args()
    trio.run(main, args.host, args.port, args.password, args.redis, args.agents)
