"""A Consumer app: decorated handlers with filters, surviving switch restarts.

It reconnects with backoff when the connection is lost (restart FreeSWITCH under it: it
comes back, subscribed again, and says how long it was away), and a connection on which
nothing arrived for 60 s (three missed HEARTBEATs) counts as lost.

By default it starts the built-in fake FreeSWITCH, places a call on it so there is something
to see, and stops after the call ends. With --host it consumes a real switch until Ctrl-C, or,
with --place-call, places that call itself and stops once it has ended normally:
    uv run python examples/consumer_app.py [--host H --port P --password PW] [--place-call D]
"""

from __future__ import annotations

import argparse

import trio

from genesis_trio import ConnectionGap, Consumer, Event, Inbound, filtrate
from genesis_trio.testing import Destination, FakeFreeSWITCH

app = Consumer(reconnect=True, liveness_timeout=60)
call_over = trio.Event()


@app.handle("CHANNEL_ANSWER")
async def answered(event: Event) -> None:
    print("answered:", event.unique_id, "caller", event.get("Caller-Caller-ID-Number"))


@app.handle("CHANNEL_HANGUP_COMPLETE")
@filtrate("Hangup-Cause", "NORMAL_CLEARING")
async def finished(event: Event) -> None:
    print("finished normally:", event.unique_id)
    call_over.set()


@app.on_gap
def reconnected(gap: ConnectionGap) -> None:
    # A plain def runs in a worker thread: blocking here would not stall the event loop.
    print(f"reconnected after {gap.down_for:.1f} s ({gap.reason}): events in between are lost")


async def place_call_and_watch(host: str, port: int, password: str, dial: str) -> None:
    """Consume while one call, placed here, runs; stop once a call has ended normally."""
    app.host, app.port, app.password = host, port, password
    async with trio.open_nursery() as nursery:
        await nursery.start(app.serve)
        async with Inbound(host, port, password) as client:
            await client.bgapi(f"originate {{origination_caller_id_number=1000}}{dial} &park")
        await call_over.wait()
        nursery.cancel_scope.cancel()


async def demo_on_fake(password: str) -> None:
    async with FakeFreeSWITCH(password=password).running() as fake:
        fake.add_destination("user/1001", Destination(answer_after=0.2, hangup_after=0.5))
        await place_call_and_watch(fake.host, fake.port, password, "user/1001")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", help="a real FreeSWITCH (default: the built-in fake)")
    parser.add_argument("--port", type=int, default=8021, help="ESL port (default 8021)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    parser.add_argument(
        "--place-call",
        metavar="DIAL",
        help="with --host: originate this (a call that ends by itself) and stop after it",
    )
    args = parser.parse_args()
    if args.host is None:
        trio.run(demo_on_fake, args.password)
    elif args.place_call:
        trio.run(place_call_and_watch, args.host, args.port, args.password, args.place_call)
    else:
        app.host, app.port, app.password = args.host, args.port, args.password
        trio.run(app.run)
