"""The write path: commands written straight to the socket when nothing else is being
written, the rest batched; every reply still reaches the command that asked for it, on
both AnyIO backends, whatever mix of small commands and ones too big for the socket's
buffer runs at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import pytest

from genesis_trio import Inbound
from genesis_trio._stream._outbox import direct_socket
from genesis_trio.testing import FakeFreeSWITCH

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
