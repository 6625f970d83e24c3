"""A scripted ESL peer on a loopback socket, for what the fake switch will not do on purpose:
stop reading, say goodbye without closing, reset right after a command."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc

AUTH_REQUEST = b"Content-Type: auth/request\n\n"
AUTH_ACCEPTED = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
DISCONNECT_NOTICE = (
    b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(GOODBYE) + GOODBYE
)


def reply(text: str = "+OK") -> bytes:
    return f"Content-Type: command/reply\nReply-Text: {text}\n\n".encode()


def api_response(body: str) -> bytes:
    data = body.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


def plain_event(name: str, **headers: str) -> bytes:
    lines = [f"Event-Name: {name}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    body = ("\n".join(lines) + "\n\n").encode()
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


class Peer:
    """The switch side of one connection: read whole commands, write raw frames."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self._buffer = b""
        self.commands: list[str] = []

    async def read_command(self) -> str:
        while b"\n\n" not in self._buffer:
            self._buffer += await self.stream.receive()
        command, self._buffer = self._buffer.split(b"\n\n", 1)
        text = command.decode()
        self.commands.append(text)
        return text

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)


Script = Callable[[Peer], Awaitable[None]]


@asynccontextmanager
async def scripted_peer(script: Script) -> AsyncIterator[tuple[str, int]]:
    """Serve ``script`` to every connection (after auth); yields (host, port)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            peer = Peer(stream)
            try:
                await stream.send(AUTH_REQUEST)
                await peer.read_command()
                await stream.send(AUTH_ACCEPTED)
                await script(peer)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, handle)
        address = listener.extra(anyio.abc.SocketAttribute.local_address)
        assert isinstance(address, tuple)
        yield "127.0.0.1", int(address[1])
        task_group.cancel_scope.cancel()


def _read_until_blank_line(conn: socket.socket) -> bool:
    data = b""
    while b"\n\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    return True


@asynccontextmanager
async def resetting_thread_peer(connections: int) -> AsyncIterator[tuple[str, int]]:
    """A peer in its own thread: per connection it authenticates, reads one command,
    then resets the connection (RST) without answering, as fast as it can, racing
    the client's own scheduling."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        with server:
            for _ in range(connections):
                conn, _ = server.accept()
                with conn:
                    conn.sendall(AUTH_REQUEST)
                    if not _read_until_blank_line(conn):
                        continue
                    conn.sendall(AUTH_ACCEPTED)
                    _read_until_blank_line(conn)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", port
    finally:
        await anyio.to_thread.run_sync(thread.join, 10)
