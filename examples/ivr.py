"""An IVR over an outbound socket: a menu with play_and_get_digits, plus DTMF handlers.

By default it runs against the built-in fake FreeSWITCH, which calls the IVR and presses 2:

    uv run python examples/ivr.py

With a real FreeSWITCH, the script listens on --listen-port and asks FreeSWITCH (over an
inbound connection) to originate --dial into the socket application:

    uv run python examples/ivr.py --host 127.0.0.1 --port 8021 --password ClueCon \
        --dial user/1000 --listen-host 127.0.0.1 --listen-port 8084
"""

from __future__ import annotations

import argparse

import anyio
import trio

from genesis_trio import ChannelHangup, Inbound, Outbound, Session
from genesis_trio.testing import FakeFreeSWITCH

MENU = "ivr/ivr-please_choose_from_the_following.wav"
CHOICES = {
    "1": "ivr/ivr-you_have_reached_sales.wav",
    "2": "ivr/ivr-you_have_reached_support.wav",
    "3": "ivr/ivr-thank_you_for_calling.wav",
}


calls_done = trio.Event()  # set when a call's flow is over (lets main() stop)


async def ivr(session: Session) -> None:
    """The call flow: answer, collect one digit, play what was chosen, hang up."""
    try:
        await call_flow(session)
    finally:
        calls_done.set()


async def call_flow(session: Session) -> None:
    channel = session.channel
    print(f"[ivr] call {session.uuid} from {session.context.get('Caller-Caller-ID-Number')}")

    @channel.on_dtmf()
    async def heard(digit: str) -> None:
        print(f"[ivr] caller pressed {digit}")

    @channel.on_dtmf("0")
    async def operator(digit: str) -> None:
        print("[ivr] 0 means the operator: noted")

    try:
        await channel.answer()
        choice = await channel.play_and_get_digits(
            MENU, max_digits=1, tries=3, input_timeout=5, regexp="[1-3]", timeout=60
        )
        if not choice:
            print("[ivr] no valid choice")
            await channel.playback("ivr/ivr-call_cannot_be_completed_as_dialed.wav")
        else:
            print(f"[ivr] choice {choice}: playing {CHOICES[choice]}")
            await channel.playback(CHOICES[choice], timeout=30)
        await channel.hangup()
        print(f"[ivr] hung up ({channel.hangup_cause})")
    except ChannelHangup as gone:
        print(f"[ivr] the caller hung up first ({gone.cause})")


async def with_fake_switch(app: Outbound) -> None:
    async with FakeFreeSWITCH().running() as fake, anyio.create_task_group() as tasks:
        address = await tasks.start(app.serve)
        fake.set_media_duration("ivr/*", 2.0)
        call = await fake.call_socket(address, caller_id_number="1000", destination_number="5000")
        await call.wait_for_application("play_and_get_digits")
        fake.send_dtmf(call.uuid, "2")  # the caller presses 2 during the menu
        await call.wait_ended()
        print(f"[fake] the call ended: {call.hangup_cause}")
        tasks.cancel_scope.cancel()


async def with_real_switch(app: Outbound, host: str, port: int, password: str, dial: str) -> None:
    async with anyio.create_task_group() as tasks:
        listen_host, listen_port = await tasks.start(app.serve)
        async with Inbound(host, port, password) as client:
            target = f"'&socket({listen_host}:{listen_port} async full)'"
            print(await client.bgapi(f"originate {dial} {target}"))
        with trio.move_on_after(300):
            await calls_done.wait()
        tasks.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", help="a real FreeSWITCH (default: the built-in fake)")
    parser.add_argument("--port", type=int, default=8021, help="ESL port (default 8021)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    parser.add_argument("--dial", default="user/1000", help="who the real FreeSWITCH calls")
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, default=0, help="0: any free port")
    args = parser.parse_args()
    app = Outbound(ivr, args.listen_host, args.listen_port)
    if args.host is None:
        trio.run(with_fake_switch, app)
    else:
        trio.run(with_real_switch, app, args.host, args.port, args.password, args.dial)


if __name__ == "__main__":
    main()
