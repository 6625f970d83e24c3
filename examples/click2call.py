"""Click-to-call: originate two legs over an Inbound connection and bridge them.

By default it runs against the built-in fake FreeSWITCH (the agent answers after 1 s, the
customer after 2 s and hangs up 5 s into the call):

    uv run python examples/click2call.py

Against a real FreeSWITCH (--max-talk ends the call after that many seconds, if nobody
hangs up before):

    uv run python examples/click2call.py --host 127.0.0.1 --port 8021 --password ClueCon \
        --agent user/1000 --customer user/1001 [--max-talk 60]
"""

from __future__ import annotations

import argparse
import math
from contextlib import AsyncExitStack

import trio

from genesis_trio import Channel, ChannelHangup, ChannelState, Inbound, OriginateError
from genesis_trio.testing import Destination, FakeFreeSWITCH


async def click_to_call(
    client: Inbound, agent: str, customer: str, max_talk: float | None = None
) -> None:
    print(f"calling the agent {agent} ...")
    agent_leg = await Channel.create(
        client, agent, {"origination_caller_id_name": "Click2Call"}, timeout=30
    )
    try:
        print(f"agent answered ({agent_leg.uuid}); calling the customer {customer} ...")
        await agent_leg.playback("tone_stream://%(200,0,440);loops=1")
        try:
            customer_leg = await Channel.create(client, customer, timeout=30)
        except OriginateError as failed:
            print(f"the customer did not answer: {failed.cause}")
            return
        except TimeoutError:
            print("the customer did not answer within 30 s")
            return
        bridge = await agent_leg.bridge(customer_leg)
        print(f"bridged {bridge['Bridge-A-Unique-ID']} <-> {bridge['Bridge-B-Unique-ID']}")
        with trio.move_on_after(max_talk if max_talk is not None else math.inf) as limit:
            hangup = await customer_leg.wait(ChannelState.HANGUP)
            cause = hangup.hangup_cause if hangup is not None else customer_leg.hangup_cause
            print(f"the customer hung up ({cause})")
        if limit.cancelled_caught:
            print(f"the call reached its limit of {max_talk:g} s")
            with trio.CancelScope(shield=True):
                await customer_leg.hangup()
    except ChannelHangup as gone:
        print(f"leg {gone.uuid} hung up ({gone.cause})")
    finally:
        with trio.CancelScope(shield=True):
            await agent_leg.hangup()
        print(f"agent leg ended: {agent_leg.hangup_cause}")


async def main(args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        host, port = args.host, args.port
        if host is None:
            fake = await stack.enter_async_context(FakeFreeSWITCH(args.password).running())
            fake.add_destination(args.agent, Destination(answer_after=1))
            fake.add_destination(args.customer, Destination(answer_after=2, hangup_after=5))
            host, port = fake.host, fake.port
        async with Inbound(host, port, args.password) as client:
            await click_to_call(client, args.agent, args.customer, args.max_talk)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", help="a real FreeSWITCH (default: the built-in fake)")
    parser.add_argument("--port", type=int, default=8021, help="ESL port (default 8021)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    parser.add_argument("--agent", default="user/1000")
    parser.add_argument("--customer", default="user/1001")
    parser.add_argument("--max-talk", type=float, help="seconds before the call is ended")
    trio.run(main, parser.parse_args())
