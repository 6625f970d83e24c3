"""A Consumer app: decorated handlers with filters.

By default it starts the built-in fake FreeSWITCH, places a call on it so there is something
to see, and stops after the call ends. With --host it consumes a real switch until Ctrl-C:
    uv run python examples/consumer_app.py [--host H --port P --password PW]
"""

from __future__ import annotations

import argparse

import trio

from genesis_trio import Consumer, Event, Inbound, filtrate
from genesis_trio.testing import Destination, FakeFreeSWITCH

app = Consumer()
call_over = trio.Event()


@app.handle("CHANNEL_ANSWER")
async def answered(event: Event) -> None:
    print("answered:", event.unique_id, "caller", event.get("Caller-Caller-ID-Number"))


@app.handle("CHANNEL_HANGUP_COMPLETE")
@filtrate("Hangup-Cause", "NORMAL_CLEARING")
async def finished(event: Event) -> None:
    print("finished normally:", event.unique_id)
    call_over.set()


async def demo_on_fake(password: str) -> None:
    async with FakeFreeSWITCH(password=password).running() as fake:
        fake.add_destination("user/1001", Destination(answer_after=0.2, hangup_after=0.5))
        app.host, app.port, app.password = fake.host, fake.port, password
        async with trio.open_nursery() as nursery:
            await nursery.start(app.serve)
            async with Inbound(fake.host, fake.port, password) as client:
                await client.bgapi("originate {origination_caller_id_number=1000}user/1001 &park")
            await call_over.wait()
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", help="a real FreeSWITCH (default: the built-in fake)")
    parser.add_argument("--port", type=int, default=8021, help="ESL port (default 8021)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    args = parser.parse_args()
    if args.host is None:
        trio.run(demo_on_fake, args.password)
    else:
        app.host, app.port, app.password = args.host, args.port, args.password
        trio.run(app.run)
