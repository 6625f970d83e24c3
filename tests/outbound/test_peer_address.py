"""The peer of an accepted outbound socket, read from the raw socket where that is the same."""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import pytest

from genesis_trio._outbound import peer_address
from genesis_trio._stream._socket import direct_socket


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no ::1")),
]


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
@pytest.mark.parametrize("host", HOSTS)
def test_the_peer_is_what_the_streams_remote_address_says(backend: str, host: str) -> None:
    seen: list[tuple[tuple[str, int], object, object]] = []

    async def main() -> None:
        listener = await anyio.create_tcp_listener(local_host=host, local_port=0)
        async with listener, anyio.create_task_group() as tg:
            accepted: list[anyio.abc.SocketStream] = []
            got_one = anyio.Event()

            async def keep(stream: anyio.abc.SocketStream) -> None:
                accepted.append(stream)
                got_one.set()
                await anyio.sleep_forever()

            tg.start_soon(listener.serve, keep)
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            async with await anyio.connect_tcp(host, port) as client:
                await got_one.wait()
                (stream,) = accepted
                raw = direct_socket(stream)
                plain = stream.extra(anyio.abc.SocketAttribute.remote_address)
                ours = client.extra(anyio.abc.SocketAttribute.local_port)
                seen.append((peer_address(stream, raw), (str(plain[0]), int(plain[1])), ours))
                await stream.aclose()
                # Closed: the stream knows no remote address any more, and neither do we.
                after = stream.extra(anyio.abc.SocketAttribute.remote_address, ("", 0))
                seen.append((peer_address(stream, raw), after, None))
            tg.cancel_scope.cancel()

    anyio.run(main, backend=backend)
    (open_peer, open_plain, client_port), (closed_peer, closed_plain, _) = seen
    assert open_peer == open_plain
    assert open_peer[1] == client_port
    assert closed_peer == closed_plain
