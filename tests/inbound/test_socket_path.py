"""The socket path: on trio, commands are written straight to the socket when nothing
else is being written (the rest batched) and the reader reads the socket itself. Every
reply still reaches the command that asked for it, on both AnyIO backends, whatever mix
of small commands and ones too big for the socket's buffer runs at once; every byte the
peer sends is read, however it is cut, and the end of the connection says why."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from genesis_trio import ConnectionLost, ESLConnection, Inbound
from genesis_trio._stream._socket import direct_socket
from genesis_trio.testing import FakeFreeSWITCH

from ._peer import AUTH_REQUEST, api_response, plain_event

pytestmark = pytest.mark.anyio

# Far more than a loopback socket's buffer takes in one send: the write goes part
# straight to the socket, the rest through the stream while the peer reads.
LARGE = 8 << 20


def payload(index: int, size: int) -> str:
    tag = f"<{index}>"
    return tag + "y" * max(0, size - 2 * len(tag)) + tag


async def test_concurrent_commands_small_and_large_each_get_their_own_reply(
    fake: FakeFreeSWITCH,
) -> None:
    sizes = [10, LARGE, 10, 300, 70_000, 10, LARGE // 2, 10] * 3
    results: dict[int, str] = {}
    async with Inbound(fake.host, fake.port, "ClueCon") as client:

        async def one(index: int, size: int) -> None:
            results[index] = await client.api("echo " + payload(index, size))

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for index, size in enumerate(sizes):
                    tg.start_soon(one, index, size)
            # The connection is still in step afterwards.
            assert (await client.api("echo after")).strip() == "after"
        assert client.connection.commands_waiting == 0
    assert {i: r.strip() for i, r in results.items()} == {
        i: payload(i, size) for i, size in enumerate(sizes)
    }
    echoed = [c for c in fake.commands_received if c.startswith("api echo <")]
    assert sorted(echoed) == sorted("api echo " + payload(i, s) for i, s in enumerate(sizes))


async def test_sequential_commands_stay_in_step(fake: FakeFreeSWITCH) -> None:
    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        with anyio.fail_after(60):
            for index in range(200):
                size = LARGE if index % 50 == 7 else 20 + index
                assert (await client.api("echo " + payload(index, size))).strip() == payload(
                    index, size
                )


class Wrapping(anyio.abc.ByteStream):
    """A stream over another one that reports its transport's attributes, as TLS does."""

    def __init__(self, inner: anyio.abc.ByteStream) -> None:
        self.inner = inner

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self.inner.send(item)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.inner.extra_attributes


async def test_only_a_trio_socket_stream_is_written_to_directly(anyio_backend: str) -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            raw = direct_socket(stream)
            if anyio_backend == "trio":
                # Its send hands bytes straight to the non-blocking socket.
                assert raw is stream.extra(anyio.abc.SocketAttribute.raw_socket)
            else:
                # asyncio's transport may still hold bytes of an earlier write.
                assert raw is None
            # A wrapper (TLS, say) reports the socket under it, but its bytes are not
            # the ones that go on the wire.
            wrapped = Wrapping(stream)
            assert wrapped.extra(anyio.abc.SocketAttribute.raw_socket) is not None
            assert direct_socket(wrapped) is None


@asynccontextmanager
async def one_peer(
    script: Callable[[anyio.abc.SocketStream], Awaitable[None]],
) -> AsyncIterator[ESLConnection]:
    """An ESLConnection (reading 7 bytes at a time) to a peer running ``script``."""
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as tg,
    ):

        async def handle(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.EndOfStream):
                    await script(stream)

        tg.start_soon(listener.serve, handle)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        connection = ESLConnection(stream, receive_size=7)
        async with anyio.create_task_group() as connection_tg:
            connection.start(connection_tg)
            try:
                yield connection
            finally:
                await connection.aclose(send_exit=False)
        tg.cancel_scope.cancel()


async def test_every_byte_is_read_however_the_peer_cuts_it(anyio_backend: str) -> None:
    events = [plain_event("CUSTOM", Event_Subclass="x::y", X_N=str(n)) for n in range(300)]
    burst = b"".join(events) + api_response("done\n")

    async def script(stream: anyio.abc.SocketStream) -> None:
        await stream.send(AUTH_REQUEST)
        await stream.receive()  # the api command
        # One big write (the reader takes it 7 bytes at a time without ever waiting),
        # then the same cut into uneven pieces, each after a pause in the flow.
        await stream.send(burst)
        for start in range(0, len(burst), 1013):
            await stream.send(burst[start : start + 1013])
            await anyio.lowlevel.checkpoint()
        await anyio.sleep_forever()

    async with one_peer(script) as connection:
        with anyio.fail_after(60):
            await connection.auth_requested.wait()
            async with connection.subscribe() as subscription:
                reply = await connection.send_command(b"api status\n\n", "api status")
                assert getattr(reply, "body", None) == "done\n"
                seen = [(await subscription.receive()).get("X-N") for _ in range(600)]
                assert seen == [str(n) for n in range(300)] * 2


async def test_the_peer_closing_is_connection_lost(anyio_backend: str) -> None:
    async def script(stream: anyio.abc.SocketStream) -> None:
        await stream.send(AUTH_REQUEST + plain_event("HEARTBEAT"))
        await stream.receive()

    async with one_peer(script) as connection:
        with anyio.fail_after(60):
            async with connection.subscribe() as subscription:
                with pytest.raises(ConnectionLost) as caught:
                    await connection.send_command(b"api status\n\n", "api status")
                await connection.closed.wait()
                assert (await subscription.receive()).get("Event-Name") == "HEARTBEAT"
    assert "closed by peer" in str(caught.value) or "broke" in str(caught.value)
    assert "closed by peer" in str(connection.lost_reason)


async def test_a_reset_says_so(anyio_backend: str) -> None:
    async def script(stream: anyio.abc.SocketStream) -> None:
        await stream.send(AUTH_REQUEST)
        await stream.receive()
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async with one_peer(script) as connection:
        with anyio.fail_after(60):
            with pytest.raises(ConnectionLost):
                await connection.send_command(b"api status\n\n", "api status")
            await connection.closed.wait()
    assert "ConnectionResetError (ECONNRESET" in str(connection.lost_reason)


async def test_closing_while_the_reader_waits_ends_it_cleanly(anyio_backend: str) -> None:
    async def script(stream: anyio.abc.SocketStream) -> None:
        await stream.send(AUTH_REQUEST)
        await anyio.sleep_forever()

    async with one_peer(script) as connection:
        with anyio.fail_after(60):
            await connection.auth_requested.wait()
            await anyio.wait_all_tasks_blocked()  # the reader waits for the socket
            await connection.aclose(send_exit=False)
            assert connection.closed.is_set()
    assert str(connection.lost_reason) == "connection closed"


async def test_callers_cancelled_while_a_batch_is_gathered_leave_the_rest_in_step(
    fake: FakeFreeSWITCH,
) -> None:
    # With commands in flight, a writer yields after its write so that others can queue
    # theirs; those callers wait only for their replies. Cancelling some of them at varying
    # points (before or after their bytes went out) must leave every other caller with its
    # own reply and the connection in step.
    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        with anyio.fail_after(120):
            for round_ in range(12):
                results: dict[int, str] = {}
                scopes: dict[int, anyio.CancelScope] = {}

                async def one(
                    index: int,
                    round_: int = round_,
                    results: dict[int, str] = results,
                    scopes: dict[int, anyio.CancelScope] = scopes,
                ) -> None:
                    with anyio.CancelScope() as scope:
                        scopes[index] = scope
                        results[index] = await client.api(f"echo {round_}-{index}")

                async with anyio.create_task_group() as tg:
                    for index in range(30):
                        tg.start_soon(one, index)
                    for _ in range(round_ % 6):
                        await anyio.lowlevel.checkpoint()
                    for index, scope in list(scopes.items()):
                        if index % 3 == round_ % 3:
                            scope.cancel()
                assert results, "some calls completed"
                for index, reply in results.items():
                    assert reply.strip() == f"{round_}-{index}"
                assert (await client.api(f"echo sync-{round_}")).strip() == f"sync-{round_}"
                assert client.connection.commands_waiting == 0
