"""Inbound behaviour that needs trio's clock or task tree."""

from __future__ import annotations

from functools import partial

import pytest
import trio
import trio.testing

from genesis_trio import ConnectTimeout, Inbound
from genesis_trio.testing import FakeFreeSWITCH
from task_tree import all_tasks


@pytest.mark.trio
async def test_no_task_outlives_the_connection(fake: FakeFreeSWITCH) -> None:
    before = all_tasks()
    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        client.on("CUSTOM", lambda event: None)
        async with client.subscribe("ALL"):
            await client.api("status")
        assert len(all_tasks()) > len(before)
    assert all_tasks() == before


@pytest.mark.trio
async def test_silent_server_gives_connect_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with pytest.raises(ConnectTimeout):
            async with Inbound("127.0.0.1", port, "ClueCon", timeout=3):
                pass
        nursery.cancel_scope.cancel()
