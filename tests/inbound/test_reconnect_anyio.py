"""Reconnecting and sync handlers on both AnyIO backends (trio and asyncio)."""

from __future__ import annotations

import threading

import anyio
import pytest

from genesis_trio import Backoff, ConnectionGap, Event, Inbound
from genesis_trio.testing import FakeFreeSWITCH

pytestmark = pytest.mark.anyio


async def test_reconnect_and_a_gap_marker(fake: FakeFreeSWITCH) -> None:
    got = anyio.Event()
    backoff = Backoff(initial=0.01, maximum=0.05, jitter=0)

    async def handler(event: Event) -> None:
        got.set()

    async with Inbound(fake.host, fake.port, "ClueCon", reconnect=backoff) as client:
        client.on("demo::a", handler)
        await client.events("CUSTOM", "demo::a")
        async with client.subscribe("demo::a", gaps=True) as events:
            lost = client.connection
            await fake.drop_connections()
            await lost.closed.wait()
            with anyio.fail_after(30):
                await client.wait_ready()
                gap = await events.receive()
            assert isinstance(gap, ConnectionGap)
            fake.fire(fake.build_event("CUSTOM", {"Event-Subclass": "demo::a"}))
            with anyio.fail_after(30):
                event = await events.receive()
                await got.wait()
            assert isinstance(event, Event)
            assert event.subclass == "demo::a"


async def test_a_sync_handler_runs_in_a_worker_thread(fake: FakeFreeSWITCH) -> None:
    loop_thread = threading.get_ident()
    ran_in: list[int] = []
    done = threading.Event()

    def handler(event: Event) -> None:
        ran_in.append(threading.get_ident())
        done.set()

    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        client.on("demo::s", handler)
        await client.events("CUSTOM", "demo::s")
        fake.fire(fake.build_event("CUSTOM", {"Event-Subclass": "demo::s"}))
        with anyio.fail_after(30):
            await anyio.to_thread.run_sync(done.wait, abandon_on_cancel=True)
    assert ran_in
    assert ran_in[0] != loop_thread


async def test_without_reconnect_wait_ready_raises_once_the_connection_is_lost(
    fake: FakeFreeSWITCH,
) -> None:
    from genesis_trio import ConnectionLost

    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        await client.wait_ready()
        assert client.ready
        await fake.drop_connections()
        await client.connection.closed.wait()
        assert not client.ready
        with anyio.fail_after(30), pytest.raises(ConnectionLost):
            await client.wait_ready()
