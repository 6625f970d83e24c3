"""outbound_handle_connection: FreeSWITCH's socket application connecting to our server.

The FreeSWITCH side is scripted here from the recorded outbound session: the
``connect`` reply is the recorded CHANNEL_DATA frame, byte for byte.
"""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

# Not re-exported from genesis_trio yet (the lead wires the public names).
from genesis_trio._outbound import Outbound
from genesis_trio._session import Session

from ._replay import capture
from ._util import parent_of
from .conftest import Recorded

REPLIES = {
    b"myevents": b"Content-Type: command/reply\nReply-Text: +OK Events Enabled\n\n",
    b"linger": b"Content-Type: command/reply\nReply-Text: +OK will linger\n\n",
    b"event": b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n",
    b"exit": b"Content-Type: command/reply\nReply-Text: +OK bye\n\n",
}


async def play_freeswitch(stream: anyio.abc.SocketStream, channel_data: bytes) -> None:
    """Answer the server's commands as the socket application would, until ``exit``."""
    buffer = b""
    async with stream:
        while True:
            while b"\n\n" not in buffer:
                buffer += await stream.receive()
            command, buffer = buffer.split(b"\n\n", 1)
            verb = command.split(b" ", 1)[0]
            await stream.send(channel_data if verb == b"connect" else REPLIES[verb])
            if verb == b"exit":
                return


@pytest.mark.trio
async def test_outbound_handle_connection_names_freeswitchs_side(recorded: Recorded) -> None:
    recorded_bytes = capture("outbound_session_plain")
    channel_data = recorded_bytes[: recorded_bytes.index(b"\n\n") + 2]
    handled: list[str] = []

    async def handler(session: Session) -> None:
        handled.append(session.uuid)

    app = Outbound(handler, "127.0.0.1", 0, tracer_provider=recorded.provider)
    async with anyio.create_task_group() as task_group:
        host, port = await task_group.start(app.serve)
        stream = await anyio.connect_tcp(host, port)
        our_port = stream.extra(anyio.abc.SocketAttribute.local_port)
        await play_freeswitch(stream, channel_data)
        task_group.cancel_scope.cancel()

    assert handled == ["737e7aab-770e-4948-bd73-a8a2c25a23c7"]
    span = recorded.one("outbound_handle_connection")
    assert span.parent is None
    # The peer is FreeSWITCH's end of the socket, not the port we listen on.
    assert dict(span.attributes or {}) == {"net.peer.name": "127.0.0.1", "net.peer.port": our_port}
    assert our_port != port
    commands = [
        s.attributes["command.name"]
        for s in recorded.spans("send_command")
        if s.attributes and parent_of(s, recorded.spans()) == span
    ]
    assert commands[:3] == ["connect", "myevents", "linger"]
    assert commands[-1] == "exit"
