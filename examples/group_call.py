"""Group call: ring a group of agents for a caller and bridge the caller to whoever answers first.

By default it runs against the built-in fake FreeSWITCH: the caller is a call originated to
user/1000; in the group, user/1001 is busy, user/1002 answers after 3 s and hangs up 5 s into
the call, user/1003 never answers (it is hung up with LOSE_RACE once 1002 answers):

    uv run python examples/group_call.py

Against a real FreeSWITCH (--max-talk ends the call after that many seconds, if nobody
hangs up before):

    uv run python examples/group_call.py --host 127.0.0.1 --port 8021 --password ClueCon \
        --caller user/1000 --group user/1001,user/1002,user/1003 --mode parallel [--max-talk 60]

In an outbound app the caller is the session's call: ``RingGroup.ring(session, group)``
watches ``session.channel`` by itself.
"""

from __future__ import annotations

import argparse
import math
from contextlib import AsyncExitStack

import trio

from genesis_trio import Channel, ChannelHangup, ChannelState, Inbound, OriginateError
from genesis_trio.group import InMemoryLoadBalancer, RingGroup, RingMode
from genesis_trio.testing import Destination, FakeFreeSWITCH


async def group_call(
    client: Inbound,
    caller_path: str,
    group: list[str],
    mode: RingMode,
    ring_seconds: float,
    max_talk: float | None = None,
) -> None:
    print(f"the caller {caller_path} is calling ...")
    try:
        caller = await Channel.create(client, caller_path, timeout=30)
    except (OriginateError, TimeoutError) as failed:
        print(f"the caller did not come up: {failed}")
        return
    try:
        print(f"ringing {', '.join(group)} ({mode.value}, {ring_seconds:g} s) ...")
        agent = await RingGroup.ring(
            client,
            group,
            mode,
            timeout=ring_seconds,
            caller=caller,  # if the caller hangs up meanwhile: every leg is hung up
            balancer=InMemoryLoadBalancer() if mode is RingMode.BALANCING else None,
            variables={"origination_caller_id_name": "Group call"},
        )
        if agent is None:
            print("nobody answered")
            return
        try:
            print(f"{agent.dial_path} answered ({agent.uuid}); bridging ...")
            await caller.bridge(agent)
            print(f"bridged {caller.uuid} <-> {agent.uuid}")
            with trio.move_on_after(max_talk if max_talk is not None else math.inf) as limit:
                await agent.wait(ChannelState.HANGUP)
                print(f"{agent.dial_path} hung up ({agent.hangup_cause})")
            if limit.cancelled_caught:
                print(f"the call reached its limit of {max_talk:g} s")
        finally:
            with trio.CancelScope(shield=True):
                await agent.hangup()
    except ChannelHangup as gone:
        print(f"channel {gone.uuid} hung up ({gone.cause})")
    finally:
        with trio.CancelScope(shield=True):
            await caller.hangup()
        print(f"the caller's call ended: {caller.hangup_cause}")


async def main(args: argparse.Namespace) -> None:
    group = [path for path in args.group.split(",") if path]
    async with AsyncExitStack() as stack:
        host, port = args.host, args.port
        if host is None:
            fake = await stack.enter_async_context(FakeFreeSWITCH(args.password).running())
            fake.add_destination(args.caller, Destination(answer_after=0))
            fake.add_destination("user/1001", Destination(reject_cause="USER_BUSY"))
            fake.add_destination("user/1002", Destination(answer_after=3, hangup_after=5))
            fake.add_destination("user/1003", Destination(answer_after=None))
            host, port = fake.host, fake.port
        async with Inbound(host, port, args.password) as client:
            await group_call(
                client, args.caller, group, RingMode(args.mode), args.timeout, args.max_talk
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", help="a real FreeSWITCH (default: the built-in fake)")
    parser.add_argument("--port", type=int, default=8021, help="ESL port (default 8021)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    parser.add_argument("--caller", default="user/1000")
    parser.add_argument("--group", default="user/1001,user/1002,user/1003")
    parser.add_argument("--mode", choices=[mode.value for mode in RingMode], default="parallel")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--max-talk", type=float, help="seconds before the call is ended")
    trio.run(main, parser.parse_args())
