"""A minimal raw ESL client for the fake's tests: real socket, sans-IO parser.

It keeps every byte received, so tests can compare the fake's bytes with the
recorded FreeSWITCH sessions under ``shared/captures``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from esl_captures import MESSAGE_TYPES
from esl_captures import read_capture as capture_bytes
from genesis_trio.protocol import (
    CONNECTION_CLOSED,
    NEED_DATA,
    ApiResponse,
    CommandReply,
    ESLParser,
    Event,
    Message,
)
from genesis_trio.testing import FakeFreeSWITCH

__all__ = ["RawClient", "ServerClosed", "capture_bytes", "connect", "parse_all"]


def parse_all(data: bytes) -> list[Message]:
    parser = ESLParser()
    parser.receive_data(data)
    parser.receive_data(b"")
    messages: list[Message] = []
    while True:
        message = parser.next_event()
        if message is CONNECTION_CLOSED:
            return messages
        assert isinstance(message, MESSAGE_TYPES), "capture ends inside a frame"
        messages.append(message)


class ServerClosed(Exception):
    """The fake closed the connection while a message was expected."""


class RawClient:
    """Sends raw bytes, reads parsed messages, remembers every byte received."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.parser = ESLParser()
        self.received = bytearray()
        self.closed = False
        self.pending_events: list[Event] = []

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def read(self) -> Message:
        """The next message; fails the test if the server closes first."""
        while True:
            message = self.parser.next_event()
            if message is CONNECTION_CLOSED:
                raise ServerClosed
            if isinstance(message, MESSAGE_TYPES):
                return message
            assert message is NEED_DATA
            try:
                data = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = b""
            if not data:
                self.closed = True
            self.received += data
            self.parser.receive_data(data)

    async def read_until_closed(self) -> list[Message]:
        messages: list[Message] = []
        while True:
            try:
                messages.append(await self.read())
            except ServerClosed:
                return messages

    async def command(self, line: str) -> CommandReply:
        await self.send(line.encode() + b"\n\n")
        reply = await self.read_reply()
        assert isinstance(reply, CommandReply), reply
        return reply

    async def api(self, line: str) -> str:
        await self.send(b"api " + line.encode() + b"\n\n")
        reply = await self.read_reply()
        assert isinstance(reply, ApiResponse), reply
        return reply.body

    async def read_reply(self) -> Message:
        """The next reply, skipping (and keeping) events that arrive before it."""
        while True:
            message = await self.read()
            if not isinstance(message, Event):
                return message
            self.pending_events.append(message)

    async def next_event(self) -> Event:
        if self.pending_events:
            return self.pending_events.pop(0)
        while True:
            message = await self.read()
            if isinstance(message, Event):
                return message

    async def events_until(self, name: str, *, uuid: str | None = None) -> list[Event]:
        """Events up to and including the first ``name`` (of channel ``uuid``)."""
        collected: list[Event] = []
        while True:
            event = await self.next_event()
            collected.append(event)
            if event.name == name and (uuid is None or event.unique_id == uuid):
                return collected


@asynccontextmanager
async def connect(
    fake: FakeFreeSWITCH, *, password: str | None = "ClueCon"
) -> AsyncIterator[RawClient]:
    stream = await anyio.connect_tcp(fake.host, fake.port)
    async with stream:
        client = RawClient(stream)
        await client.read()  # auth/request
        if password is not None:
            reply = await client.command(f"auth {password}")
            assert reply.reply_text == "+OK accepted"
        yield client
