"""Tutorial step 3: an outbound handler that answers and plays.

FreeSWITCH connects to this server for every call its dialplan sends to
`socket 127.0.0.1:8084 async full`. Run it, then place a call into it:

    uv run python examples/tutorial/step3_outbound.py --calls 1
    uv run genesis-trio fake-switch --port 8022 --call-socket 127.0.0.1:8084     # the fake
    fs_cli -x "originate {outbound_port=8084}loopback/9000/default &park"         # a real switch
"""

from __future__ import annotations

import argparse

import trio

from genesis_trio import Outbound, Session

WELCOME = "tone_stream://%(300,100,440);loops=2"  # the test switch has tones, not sound files


async def handler(session: Session) -> None:
    channel = session.channel
    print(f"call {channel.uuid} from {session.context.get('Caller-Caller-ID-Number')}")
    await channel.answer()
    await channel.playback(WELCOME)  # returns when the playback is over
    await channel.hangup()
    print(f"call {channel.uuid} done")


async def serve(host: str, port: int, calls: int | None) -> None:
    """Serve until Ctrl-C, or until ``calls`` calls were handled."""
    done = 0
    all_done = trio.Event()

    async def counted(session: Session) -> None:
        nonlocal done
        try:
            await handler(session)
        finally:
            done += 1
            if calls is not None and done >= calls:
                all_done.set()

    async with trio.open_nursery() as nursery:
        listening = await nursery.start(Outbound(counted, host, port).serve)
        print(f"outbound server on {listening[0]}:{listening[1]}", flush=True)
        await all_done.wait()
        nursery.cancel_scope.cancel()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listen-host", default="127.0.0.1", help="where to listen")
    parser.add_argument("--listen-port", type=int, default=8084, help="port to listen on")
    parser.add_argument("--calls", type=int, default=None, help="stop after this many calls")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    trio.run(serve, args.listen_host, args.listen_port, args.calls)
