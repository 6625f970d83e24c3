"""Inbound basics: api, bgapi, a subscription and a handler.

Runs against the built-in fake FreeSWITCH by default; pass --host/--port/--password to use
a real one:  uv run python examples/inbound_basics.py [--host H --port P --password PW]
"""

from __future__ import annotations

import argparse
from contextlib import AsyncExitStack

import trio

from genesis_trio import Event, Inbound
from genesis_trio.testing import FakeFreeSWITCH


async def main(host: str | None, port: int, password: str) -> None:
    async with AsyncExitStack() as stack:
        if host is None:
            fake = await stack.enter_async_context(FakeFreeSWITCH(password=password).running())
            host, port = fake.host, fake.port
        async with Inbound(host, port, password) as client:
            print("status:", (await client.api("status")).splitlines()[0])
            print("version (bgapi):", (await client.bgapi("version")).strip())

            # async: it runs on the event loop, in order. A plain def handler would
            # run in a worker thread (for blocking work), perhaps after this block ends.
            async def on_custom(event: Event) -> None:
                print("handler saw", event.subclass, event.get("X-Greeting"))

            client.on("CUSTOM", on_custom)
            async with client.subscribe("example::hello") as events:
                await client.sendevent(
                    "CUSTOM", {"Event-Subclass": "example::hello", "X-Greeting": "hi there"}
                )
                event = await events.receive()
                print("subscription got", event.subclass, event["X-Greeting"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", help="a real FreeSWITCH (default: the built-in fake)")
    parser.add_argument("--port", type=int, default=8021, help="ESL port (default 8021)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    args = parser.parse_args()
    trio.run(main, args.host, args.port, args.password)
