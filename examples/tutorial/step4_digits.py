"""Tutorial step 4: digits and branching.

The caller hears a menu and presses a digit: 1 is sales, 2 is support, anything else (or
nothing, three times) says goodbye. Digits pressed at any time are also seen by an
`on_dtmf` handler, which runs in its own task for as long as the call lasts.

    uv run python examples/tutorial/step4_digits.py --calls 1
    uv run genesis-trio fake-switch --port 8022 --call-socket 127.0.0.1:8084 --dtmf 9000=2
    fs_cli -x "originate {outbound_port=8084}loopback/9000/default &park"   # then uuid_send_dtmf
"""

from __future__ import annotations

import argparse

import trio

from genesis_trio import ChannelHangup, Outbound, Session

MENU = "tone_stream://%(400,200,440);loops=5"
CHOICES = {
    "1": "tone_stream://%(200,0,660)",  # sales
    "2": "tone_stream://%(200,0,880)",  # support
}
GOODBYE = "tone_stream://%(500,0,330)"


async def handler(session: Session) -> None:
    channel = session.channel

    @channel.on_dtmf()
    async def heard(digit: str) -> None:
        print(f"call {channel.uuid}: heard {digit}", flush=True)

    try:
        await channel.answer()
        choice = await channel.play_and_get_digits(
            MENU, max_digits=1, tries=3, input_timeout=3, regexp="[12]"
        )
        print(f"call {channel.uuid}: chose {choice or 'nothing'}", flush=True)
        await channel.playback(CHOICES.get(choice, GOODBYE))
        await channel.hangup()
    except ChannelHangup:
        print(f"call {channel.uuid}: the caller hung up", flush=True)


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
