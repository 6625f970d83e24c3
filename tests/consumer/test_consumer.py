"""The Consumer app against the fake switch."""

from __future__ import annotations

from functools import partial
from itertools import pairwise

import anyio
import pytest
import trio
import trio.testing

from genesis_trio import Consumer, Event, Inbound, filtrate
from genesis_trio.testing import FakeFreeSWITCH

pytestmark = pytest.mark.trio


def consumer_for(
    fake: FakeFreeSWITCH, *, concurrent: bool = True, reconnect: bool = False
) -> Consumer:
    return Consumer(fake.host, fake.port, "ClueCon", concurrent=concurrent, reconnect=reconnect)


async def fire(fake: FakeFreeSWITCH, subclass: str, **headers: str) -> None:
    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        await client.sendevent("CUSTOM", {"Event-Subclass": subclass, **headers})


async def test_handlers_receive_their_events_and_subscribe_only_to_those(
    fake: FakeFreeSWITCH,
) -> None:
    app = consumer_for(fake)
    got = trio.Event()
    seen: list[Event] = []

    @app.handle("demo::ping")
    async def ping(event: Event) -> None:
        seen.append(event)
        got.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(app.serve)
        await fire(fake, "demo::ping", **{"X-A": "1"})
        with trio.fail_after(5):
            await got.wait()
        nursery.cancel_scope.cancel()
    assert [e["X-A"] for e in seen] == ["1"]
    assert "event plain CUSTOM demo::ping" in fake.commands_received


async def test_filtrate_exact_and_regex(fake: FakeFreeSWITCH) -> None:
    app = consumer_for(fake, concurrent=False)
    exact: list[str] = []
    pattern: list[str] = []
    last = trio.Event()

    @app.handle("demo::f")
    @filtrate("X-Who", "alice")
    async def only_alice(event: Event) -> None:
        exact.append(event["X-Who"])

    @app.handle("demo::f")
    @filtrate("X-Who", r"^b", regex=True)
    async def starts_with_b(event: Event) -> None:
        pattern.append(event["X-Who"])

    @app.handle("demo::f")
    @filtrate("X-Last")
    async def done(event: Event) -> None:
        last.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(app.serve)
        for who in ("alice", "bob", "carol", "bea"):
            await fire(fake, "demo::f", **{"X-Who": who})
        await fire(fake, "demo::f", **{"X-Who": "z", "X-Last": "1"})
        with trio.fail_after(5):
            await last.wait()
        nursery.cancel_scope.cancel()
    assert exact == ["alice"]
    assert pattern == ["bob", "bea"]


async def test_switch_filters_are_pushed_when_every_handler_has_one(fake: FakeFreeSWITCH) -> None:
    app = consumer_for(fake)
    got = trio.Event()

    @app.handle("demo::g")
    @filtrate("X-Tenant", "acme")
    async def acme(event: Event) -> None:
        got.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(app.serve)
        await fire(fake, "demo::g", **{"X-Tenant": "acme"})
        with trio.fail_after(5):
            await got.wait()
        nursery.cancel_scope.cancel()
    assert "filter X-Tenant acme" in fake.commands_received


async def test_a_failing_handler_does_not_stop_the_consumer(fake: FakeFreeSWITCH) -> None:
    app = consumer_for(fake, concurrent=False)
    calls: list[str] = []
    second = trio.Event()

    @app.handle("demo::h")
    async def handler(event: Event) -> None:
        calls.append(event["X-N"])
        if event["X-N"] == "1":
            raise ValueError("boom")
        second.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(app.serve)
        await fire(fake, "demo::h", **{"X-N": "1"})
        await fire(fake, "demo::h", **{"X-N": "2"})
        with trio.fail_after(5):
            await second.wait()
        nursery.cancel_scope.cancel()
    assert calls == ["1", "2"]


async def test_reconnects_after_the_connection_is_lost(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    app = consumer_for(fake, reconnect=True)
    got = trio.Event()

    @app.handle("demo::r")
    async def handler(event: Event) -> None:
        got.set()

    async with trio.open_nursery() as nursery:
        first_client = await nursery.start(app.serve)
        await fake.drop_connections()
        await trio.testing.wait_all_tasks_blocked()  # the consumer has seen the loss
        with trio.fail_after(60):
            second_client = await app.wait_ready()
        assert second_client is not first_client
        assert fake.authentications == 2
        await fire(fake, "demo::r")
        with trio.fail_after(60):
            await got.wait()
        nursery.cancel_scope.cancel()


async def test_without_reconnect_a_lost_connection_ends_run(fake: FakeFreeSWITCH) -> None:
    from genesis_trio import ConnectionLost

    app = consumer_for(fake)

    @app.handle("HEARTBEAT")
    async def handler(event: Event) -> None:
        pass

    async def serve_then_drop() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(app.serve)
            await fake.drop_connections()

    with pytest.raises(ExceptionGroup) as caught:
        await serve_then_drop()
    assert caught.group_contains(ConnectionLost)


async def test_the_reconnect_backoff_starts_over_after_a_healthy_connection(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 10, item 13: five one-second connections, each dropped, wait 0.5 s each time."""
    app = consumer_for(fake, reconnect=True)

    @app.handle("HEARTBEAT")
    async def handler(event: Event) -> None:
        pass

    waits: list[float] = []
    async with trio.open_nursery() as nursery:
        client = await nursery.start(app.serve)
        for _ in range(5):
            await trio.sleep(1)  # a healthy connection, for a while
            await fake.drop_connections()
            await client.connection.closed.wait()
            dropped_at = trio.current_time()
            with trio.fail_after(120):
                client = await app.wait_ready()
            waits.append(trio.current_time() - dropped_at)
        nursery.cancel_scope.cancel()
    assert waits == [pytest.approx(0.5, abs=0.05)] * 5


async def test_the_reconnect_backoff_grows_while_attempts_fail(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that hangs up before the greeting is no healthy connection: the wait doubles."""
    attempts: list[float] = []
    enough = trio.Event()

    async def slam(stream: trio.SocketStream) -> None:
        attempts.append(trio.current_time())
        if len(attempts) == 5:
            enough.set()
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), slam, 0)
        port = listeners[0].socket.getsockname()[1]
        app = Consumer("127.0.0.1", port, "ClueCon", reconnect=True)
        nursery.start_soon(app.run)
        with trio.fail_after(120):
            await enough.wait()
        nursery.cancel_scope.cancel()
    gaps = [later - earlier for earlier, later in pairwise(attempts)]
    assert gaps == [pytest.approx(w, abs=0.05) for w in (0.5, 1, 2, 4)]
