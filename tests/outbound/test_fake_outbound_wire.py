"""The fake switch's outbound socket, byte for byte against the recorded session.

A raw listener plays the application (no genesis_trio client code), sends what
the recorded client sent, and compares the frames it gets with the recording.
"""

from __future__ import annotations

from functools import partial

import pytest
import trio
import trio.testing

from esl_captures import read_capture
from genesis_trio.protocol import (
    NEED_DATA,
    ApiResponse,
    CommandReply,
    DisconnectNotice,
    ESLParser,
    Event,
    Message,
)
from genesis_trio.testing import FakeFreeSWITCH

pytestmark = pytest.mark.trio


def recorded(name: str) -> tuple[list[Message], list[bytes]]:
    parser = ESLParser()
    parser.receive_data(read_capture(f"{name}.bin"))
    messages: list[Message] = []
    while (message := parser.next_event()) is not NEED_DATA:
        messages.append(message)  # type: ignore[arg-type]
    commands = [
        block + b"\n\n" for block in read_capture(f"{name}.sent.bin").split(b"\n\n") if block
    ]
    return messages, commands


def shape(message: Message) -> str:
    """What kind of frame it is, with the details that must match the recording."""
    if isinstance(message, Event):
        app = message.application
        return f"{message.name}{'/' + app if app else ''}"
    if isinstance(message, CommandReply):
        return "connect" if message.event is not None else f"reply {message.reply_text}"
    if isinstance(message, ApiResponse):
        return "api"
    if isinstance(message, DisconnectNotice):
        return f"notice {message.disposition}"
    return type(message).__name__


class RawApp:
    """The application side of one outbound socket, speaking raw bytes."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.parser = ESLParser()
        self.frames: list[Message] = []

    async def until(self, done: str) -> None:
        """Read frames until one whose shape starts with ``done``."""
        while not (self.frames and shape(self.frames[-1]).startswith(done)):
            message = self.parser.next_event()
            if message is NEED_DATA:
                data = await self.stream.receive_some()
                if not data:
                    return
                self.parser.receive_data(data)
                continue
            self.frames.append(message)  # type: ignore[arg-type]


async def test_the_fake_answers_the_recorded_client_as_freeswitch_did(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    messages, commands = recorded("outbound_session_plain")
    accepted: list[trio.SocketStream] = []
    connected = trio.Event()

    async def accept(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        connected.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, accept, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        fake.set_media_duration("tone_stream://%(500,100,440,480);loops=2", 1)
        call = await fake.call_socket(("127.0.0.1", port))
        await connected.wait()
        app = RawApp(accepted[0])
        # The recorded commands, with the recording's uuid replaced by this call's.
        recorded_uuid = "737e7aab-770e-4948-bd73-a8a2c25a23c7"
        script = [c.replace(recorded_uuid.encode(), call.uuid.encode()) for c in commands]
        waits = [
            "connect",
            "reply +OK Events Enabled",
            "reply +OK will linger",
            "CHANNEL_EXECUTE_COMPLETE/answer",
            "CHANNEL_EXECUTE_COMPLETE/playback",
            "api",
            "notice linger",
            "notice disconnect",
        ]
        for command, wait in zip(script, waits, strict=True):
            await app.stream.send_all(command)
            await app.until(wait)
        nursery.cancel_scope.cancel()

    ours = [shape(m) for m in app.frames]
    theirs = [shape(m) for m in messages]
    assert ours == theirs
    notices = [m for m in app.frames if isinstance(m, DisconnectNotice)]
    assert [dict(n.headers.multi_items()) for n in notices] == [
        {
            "Content-Type": "text/disconnect-notice",
            "Controlled-Session-UUID": call.uuid,
            "Content-Disposition": "linger",
            "Channel-Name": call.name,
            "Linger-Time": "-1",
            "Content-Length": "0",
        },
        {
            "Content-Type": "text/disconnect-notice",
            "Controlled-Session-UUID": call.uuid,
            "Content-Disposition": "disconnect",
            "Content-Length": "67",
        },
    ]
    sent_uuids = [
        line.removeprefix(b"Event-UUID: ").decode()
        for command in script
        for line in command.split(b"\n")
        if line.startswith(b"Event-UUID: ")
    ]
    completed = [
        m.application_uuid
        for m in app.frames
        if isinstance(m, Event) and m.name == "CHANNEL_EXECUTE_COMPLETE"
        if m.application in ("answer", "playback")
    ]
    assert completed == sent_uuids
    await call.wait_ended()  # DESTROY once the socket was gone, never on the socket
    assert "CHANNEL_DESTROY" not in ours
