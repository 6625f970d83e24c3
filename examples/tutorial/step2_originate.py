"""Tutorial step 2: originate a call, look at its channel, hang it up.

`loopback/9002/default` answers and parks on the built-in fake and on the real test switch;
`loopback/9005/default` is busy.

    uv run genesis-trio fake-switch
    uv run python examples/tutorial/step2_originate.py [--host H --port P --password PW]
"""

from __future__ import annotations

import argparse

import trio

from genesis_trio import Channel, Inbound, OriginateError


async def main(host: str, port: int, password: str) -> None:
    async with Inbound(host, port, password) as client:
        # Channel.create returns once the callee answered; the leg then runs &park().
        channel = await Channel.create(client, "loopback/9002/default", timeout=30)
        print(f"answered: {channel.uuid} state={channel.state} answered={channel.answered}")
        await trio.sleep(1)  # the call is up for a second
        await channel.hangup()  # waits for CHANNEL_HANGUP
        print("hung up:", channel.hangup_cause)

        try:
            await Channel.create(client, "loopback/9005/default", timeout=30)
        except OriginateError as error:  # a failed originate raises, with FreeSWITCH's cause
            print("9005 did not answer:", error.cause)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="FreeSWITCH ESL host")
    parser.add_argument("--port", type=int, default=8021, help="ESL port")
    parser.add_argument("--password", default="ClueCon", help="ESL password")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    trio.run(main, args.host, args.port, args.password)
