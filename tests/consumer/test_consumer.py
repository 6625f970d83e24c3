"""The Consumer app against the fake switch.

The sleeps here are points in a scripted timeline on trio's MockClock (``autojump_clock``):
virtual seconds, skipped as soon as every task waits; nothing waits for real time to pass.
"""

from __future__ import annotations

import logging
from functools import partial
from itertools import pairwise

import anyio
import pytest
import trio
import trio.testing

from genesis_trio import Backoff, ConnectionGap, Consumer, Event, Inbound, filtrate
from genesis_trio.testing import FakeFreeSWITCH
from inbound._peer import Peer, reply, scripted_peer

pytestmark = pytest.mark.trio


def consumer_for(
    fake: FakeFreeSWITCH, *, concurrent: bool = True, reconnect: bool | Backoff = False
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
    gaps: list[ConnectionGap] = []

    @app.handle("demo::r")
    async def handler(event: Event) -> None:
        got.set()

    @app.on_gap
    async def told(gap: ConnectionGap) -> None:
        gaps.append(gap)

    async with trio.open_nursery() as nursery:
        client = await nursery.start(app.serve)
        first_connection = client.connection
        await fake.drop_connections()
        await trio.testing.wait_all_tasks_blocked()  # the consumer has seen the loss
        assert not app.subscribed
        with trio.fail_after(60):
            assert await app.wait_ready() is client
        assert client.connection is not first_connection
        assert app.subscribed
        assert fake.authentications == 2
        # The new connection asked for the handler's events again.
        assert fake.commands_received.count("event plain CUSTOM demo::r") == 2
        await fire(fake, "demo::r")
        with trio.fail_after(60):
            await got.wait()
        nursery.cancel_scope.cancel()
    assert len(gaps) == 1
    assert gaps[0].attempts == 1
    assert "closed by peer" in gaps[0].reason


async def test_a_drop_before_the_first_subscribe_is_answered_is_an_ordinary_reconnect(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Connected and authenticated, the first ``event`` command written, then the switch is
    gone: the client reconnects (and says so) like after any drop, and subscribes again."""
    connections = 0

    async def switch(peer: Peer) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await peer.read_command()  # the subscribe, never answered: the socket closes
            return
        while True:
            await peer.read_command()
            await peer.send(reply("+OK"))

    app_gaps: list[ConnectionGap] = []
    caplog.set_level(logging.INFO, logger="genesis_trio")
    async with scripted_peer(switch) as (host, port), trio.open_nursery() as nursery:
        app = Consumer(host, port, "ClueCon", reconnect=Backoff(jitter=0))

        @app.handle("demo::s")
        async def handler(event: Event) -> None:
            pass

        @app.on_gap
        async def told(gap: ConnectionGap) -> None:
            app_gaps.append(gap)

        with trio.fail_after(60):
            client = await nursery.start(app.serve)
        assert app.subscribed
        assert client.reconnects == 1
        assert connections == 2
        nursery.cancel_scope.cancel()
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("lost the connection to") for m in messages), messages
    assert any(m.startswith("reconnected to") for m in messages), messages
    assert not any("could not connect" in m for m in messages), messages
    # Nothing had been subscribed to before the drop: no events were missed.
    assert app_gaps == []


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
    """Issue 10, item 13: five connections healthy for a while, each dropped, wait 0.5 s each."""
    app = consumer_for(fake, reconnect=Backoff(jitter=0, healthy_after=1))

    @app.handle("HEARTBEAT")
    async def handler(event: Event) -> None:
        pass

    waits: list[float] = []
    async with trio.open_nursery() as nursery:
        client = await nursery.start(app.serve)
        for _ in range(5):
            await trio.sleep(1)  # a healthy connection, for healthy_after
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
        app = Consumer("127.0.0.1", port, "ClueCon", reconnect=Backoff(jitter=0))
        nursery.start_soon(app.run)
        with trio.fail_after(120):
            await enough.wait()
        nursery.cancel_scope.cancel()
    gaps = [later - earlier for earlier, later in pairwise(attempts)]
    assert gaps == [pytest.approx(w, abs=0.05) for w in (0.5, 1, 2, 4)]


async def test_short_lived_connections_do_not_reset_the_backoff(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    """A connection dropped before ``healthy_after`` keeps the series growing."""
    app = consumer_for(fake, reconnect=Backoff(jitter=0, healthy_after=10))

    @app.handle("HEARTBEAT")
    async def handler(event: Event) -> None:
        pass

    waits: list[float] = []
    async with trio.open_nursery() as nursery:
        client = await nursery.start(app.serve)
        for _ in range(4):
            await trio.sleep(1)  # up, but not for healthy_after
            await fake.drop_connections()
            await client.connection.closed.wait()
            dropped_at = trio.current_time()
            with trio.fail_after(120):
                client = await app.wait_ready()
            waits.append(trio.current_time() - dropped_at)
        nursery.cancel_scope.cancel()
    assert waits == [pytest.approx(w, abs=0.05) for w in (0.5, 1, 2, 4)]


async def test_jitter_shortens_each_wait_by_up_to_its_fraction(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[float] = []
    enough = trio.Event()

    async def slam(stream: trio.SocketStream) -> None:
        attempts.append(trio.current_time())
        if len(attempts) == 8:
            enough.set()
        await stream.aclose()

    backoff = Backoff(initial=1, maximum=8, factor=2, jitter=0.5)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), slam, 0)
        port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(Consumer("127.0.0.1", port, "ClueCon", reconnect=backoff).run)
        with trio.fail_after(600):
            await enough.wait()
        nursery.cancel_scope.cancel()
    gaps = [later - earlier for earlier, later in pairwise(attempts)]
    steps = [backoff.step(n) for n in range(len(gaps))]
    assert steps == [1, 2, 4, 8, 8, 8, 8]
    for gap, step in zip(gaps, steps, strict=True):
        assert step * 0.5 - 0.05 <= gap <= step + 0.05
    assert len({round(gap / step, 3) for gap, step in zip(gaps, steps, strict=True)}) > 1


async def test_backoff_refuses_nonsense() -> None:
    for bad in (
        {"initial": 0},
        {"initial": 2, "maximum": 1},
        {"factor": 0.5},
        {"jitter": 1.5},
        {"healthy_after": -1},
    ):
        with pytest.raises(ValueError, match="Backoff"):
            Backoff(**bad)
    assert Backoff(initial=1, maximum=30, factor=2).step(10_000) == 30
