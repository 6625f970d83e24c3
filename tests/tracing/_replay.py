"""A loopback peer that replays a recorded FreeSWITCH session to one client.

It sends the recorded greeting, waits for the client's ``auth``, then sends
every remaining recorded byte and closes: the client sees exactly what
FreeSWITCH sent, events included, over a real socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from esl_captures import read_capture

GREETING = b"Content-Type: auth/request\n\n"


def capture(name: str) -> bytes:
    return read_capture(f"{name}.bin")


@asynccontextmanager
async def replaying(recorded: bytes) -> AsyncIterator[tuple[str, int]]:
    assert recorded.startswith(GREETING)
    rest = recorded[len(GREETING) :]

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.send(GREETING)
            received = b""
            while b"\n\n" not in received:
                received += await stream.receive()
            await stream.send(rest)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, serve, task_group)
        try:
            yield "127.0.0.1", port
        finally:
            task_group.cancel_scope.cancel()
