"""Tutorial step 1: connect, run `api` and `bgapi` commands.

Start a switch first (the built-in fake, or a real FreeSWITCH on 127.0.0.1:8021):

    uv run genesis-trio fake-switch
    uv run python examples/tutorial/step1_connect.py [--host H --port P --password PW]
"""

from __future__ import annotations

import argparse

import trio

from genesis_trio import CommandError, Inbound


async def main(host: str, port: int, password: str) -> None:
    # The connection is an async context manager: leaving the block closes it, and
    # nothing it started (its reader, its handlers) outlives the block.
    async with Inbound(host, port, password) as client:
        status = await client.api("status")  # the api/response body
        print("status:", status.splitlines()[0])
        version = await client.bgapi("version")  # runs in the background; we await the result
        print("version:", version.strip())
        try:
            await client.api("no_such_command")
        except CommandError as error:  # -ERR replies raise
            print("an unknown command raises CommandError:", error.reply.strip())


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
