"""An IVR over an outbound socket: a menu with play_and_get_digits, plus DTMF handlers.

By default it runs against the built-in fake FreeSWITCH, which calls the IVR and presses 2:

    uv run python examples/ivr.py

With a real FreeSWITCH, the script listens on --listen-port and serves the first call the
switch connects to it; --dial asks FreeSWITCH (over an inbound connection) to originate that
call into the socket application, otherwise route one there from the dialplan (the test
bundle's `{outbound_port=8084}loopback/9000/default`). --tones plays a tone for every prompt,
for a switch without the sound files:

    uv run python examples/ivr.py --host 127.0.0.1 --port 8021 --password ClueCon \
        --dial user/1000 --listen-host 127.0.0.1 --listen-port 8084 [--tones]
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
SORRY = "ivr/ivr-call_cannot_be_completed_as_dialed.wav"
TONE = "tone_stream://%(1000,0,440)"
#: With --tones every prompt is a one-second tone: for a switch without sound files.
use_tones = False


def sound(path: str) -> str:
    return TONE if use_tones else path


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
            sound(MENU), max_digits=1, tries=3, input_timeout=5, regexp="[1-3]", timeout=60
        )
        if not choice:
            print("[ivr] no valid choice")
            await channel.playback(sound(SORRY))
        else:
            print(f"[ivr] choice {choice}: playing {CHOICES[choice]}")
            await channel.playback(sound(CHOICES[choice]), timeout=30)
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


async def with_real_switch(
    app: Outbound, host: str, port: int, password: str, dial: str | None
) -> None:
    async with anyio.create_task_group() as tasks:
        listen_host, listen_port = await tasks.start(app.serve)
        print(f"[ivr] listening on {listen_host}:{listen_port}", flush=True)
        if dial is not None:
            async with Inbound(host, port, password) as client:
                target = f"'&socket({listen_host}:{listen_port} async full)'"
                print(await client.bgapi(f"originate {dial} {target}"))
        # Without --dial, the switch's dialplan routes a call here (a `socket` application).
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
    parser.add_argument(
        "--dial",
        default=None,
        help="who the real FreeSWITCH calls into the IVR (default: wait for a routed call)",
    )
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--tones", action="store_true", help="play tones, not sound files")
    args = parser.parse_args()
    global use_tones
    use_tones = args.tones
    app = Outbound(ivr, args.listen_host, args.listen_port)
    if args.host is None:
        trio.run(with_fake_switch, app)
    else:
        trio.run(with_real_switch, app, args.host, args.port, args.password, args.dial)


if __name__ == "__main__":
    main()
