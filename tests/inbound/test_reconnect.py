"""A reconnecting Inbound and the liveness watchdog, against the fake switch.

The sleeps here are points in a scripted timeline on trio's MockClock (``autojump_clock``):
virtual seconds, skipped as soon as every task waits; nothing waits for real time to pass.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.abc
import pytest
import trio
import trio.testing

from genesis_trio import (
    Backoff,
    CommandStage,
    ConnectionGap,
    ConnectionLost,
    Event,
    Inbound,
    LogData,
    OpsServer,
)
from genesis_trio.testing import FakeFreeSWITCH
from task_tree import all_tasks

pytestmark = pytest.mark.trio

NO_JITTER = Backoff(jitter=0)


def custom(fake: FakeFreeSWITCH, subclass: str, **headers: str) -> Event:
    return fake.build_event("CUSTOM", {"Event-Subclass": subclass, **headers})


@asynccontextmanager
async def switch_on(port: int = 0, password: str = "ClueCon") -> AsyncIterator[FakeFreeSWITCH]:
    fake = FakeFreeSWITCH(password=password, port=port)
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve)
        yield fake
        nursery.cancel_scope.cancel()


async def lose_and_wait_ready(fake: FakeFreeSWITCH, client: Inbound) -> None:
    lost = client.connection
    await fake.drop_connections()
    await lost.closed.wait()
    with trio.fail_after(120):
        await client.wait_ready()


async def test_a_reconnect_asks_again_for_everything_and_marks_the_gap(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    handled: list[str] = []
    second = trio.Event()

    async def handler(event: Event) -> None:
        handled.append(event["X-N"])
        if event["X-N"] == "2":
            second.set()

    async with Inbound(fake.host, fake.port, "ClueCon", reconnect=NO_JITTER) as client:
        client.on("demo::x", handler)
        await client.events("CHANNEL_ANSWER", "CUSTOM", "demo::x", event_format="json")
        await client.filter("X-Keep", "yes")
        await client.log(5)
        async with client.subscribe("demo::x", gaps=True) as events:
            fake.fire(custom(fake, "demo::x", **{"X-Keep": "yes", "X-N": "1"}))
            with trio.fail_after(10):
                first = await events.receive()
            assert isinstance(first, Event)
            before = len(fake.commands_received)
            first_connection = client.connection

            await lose_and_wait_ready(fake, client)

            assert client.connection is not first_connection
            assert client.reconnects == 1
            assert fake.commands_received[before:] == [
                "auth ******",
                "event json CHANNEL_ANSWER CUSTOM demo::x",
                "filter X-Keep yes",
                "log 5",
            ]
            assert client.filters == [("X-Keep", "yes")]
            gap = await events.receive()
            assert isinstance(gap, ConnectionGap)
            assert gap.attempts == 1
            assert gap.down_for == pytest.approx(0.5, abs=0.05)
            assert "closed by peer" in gap.reason
            # The filter is on the new connection too: only X-Keep: yes gets through.
            fake.fire(custom(fake, "demo::x", **{"X-Keep": "no", "X-N": "dropped"}))
            fake.fire(custom(fake, "demo::x", **{"X-Keep": "yes", "X-N": "2"}))
            with trio.fail_after(10):
                after = await events.receive()
                await second.wait()
            assert isinstance(after, Event)
            assert after["X-N"] == "2"
    assert handled == ["1", "2"]


async def test_during_an_outage_commands_fail_fast_and_plain_subscriptions_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = Backoff(initial=30, maximum=30, jitter=0)
    async with switch_on() as fake:
        port = fake.port
        async with Inbound(fake.host, port, "ClueCon", reconnect=slow) as client:
            async with client.subscribe("demo::y") as plain:
                await fake.drop_connections()
                await client.connection.closed.wait()
                assert not client.ready
                with pytest.raises(ConnectionLost) as lost:
                    await client.api("status")
                assert lost.value.stage is CommandStage.NOT_SENT
                with pytest.raises(ConnectionLost):
                    await plain.receive()
            with trio.fail_after(120):
                await client.wait_ready()
            assert "UP" in await client.api("status")


async def test_a_log_subscription_with_gaps_outlives_the_connection(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with Inbound(fake.host, fake.port, "ClueCon", reconnect=NO_JITTER) as client:
        async with client.subscribe_logs(6, gaps=True) as lines:
            await client.api("log INFO before the drop")
            with trio.fail_after(10):
                before = await lines.receive()
            assert isinstance(before, LogData)
            assert "before the drop" in before.body
            sent = len(fake.commands_received)

            await lose_and_wait_ready(fake, client)

            assert fake.commands_received[sent:] == ["auth ******", "log 6"]
            with trio.fail_after(10):
                gap = await lines.receive()
            assert isinstance(gap, ConnectionGap)
            assert "closed by peer" in gap.reason
            await client.api("log INFO after the reconnect")
            with trio.fail_after(10):
                after = await lines.receive()
            assert isinstance(after, LogData)
            assert "after the reconnect" in after.body
        # Left: the lines of the next connection go nowhere, and nothing waits for them.
        await lose_and_wait_ready(fake, client)
        await client.api("log INFO nobody listens")


async def test_a_plain_log_subscription_fails_with_its_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = Backoff(initial=30, maximum=30, jitter=0)
    async with switch_on() as fake, Inbound(fake.host, fake.port, reconnect=slow) as client:
        async with client.subscribe_logs(6) as lines:
            await fake.drop_connections()
            with trio.fail_after(10), pytest.raises(ConnectionLost):
                await lines.receive()
        with trio.fail_after(120):
            await client.wait_ready()
        # Entered again on the new connection, it receives that connection's lines.
        async with client.subscribe_logs(6) as lines:
            await client.api("log INFO on the new connection")
            with trio.fail_after(10):
                line = await lines.receive()
            assert "on the new connection" in line.body


async def test_the_switch_coming_back_later_on_the_same_port(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backoff = Backoff(initial=1, maximum=4, jitter=0)
    first = FakeFreeSWITCH()
    first_scope = trio.CancelScope()

    async def run_first(*, task_status: anyio.abc.TaskStatus[tuple[str, int]]) -> None:
        with first_scope:
            await first.serve(task_status=task_status)

    async with trio.open_nursery() as nursery:
        await nursery.start(run_first)
        port = first.port
        async with (
            Inbound("127.0.0.1", port, "ClueCon", reconnect=backoff) as client,
            client.gaps() as gaps,
        ):
            await client.events("CUSTOM", "demo::z")
            first_scope.cancel()  # the switch is gone
            await client.connection.closed.wait()
            # Attempts fail (1, 2, 4, 4... s apart) until it is back.
            await trio.sleep(20)
            assert not client.ready
            async with switch_on(port=port) as second:
                with trio.fail_after(120):
                    await client.wait_ready()
                gap = await gaps.receive()
                assert gap.attempts > 3
                assert second.commands_received[-1] == "event plain CUSTOM demo::z"


async def test_cancelling_the_owner_stops_reconnecting_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = all_tasks()
    with trio.CancelScope() as owner:
        async with switch_on() as fake:
            port = fake.port
            client = Inbound("127.0.0.1", port, "ClueCon", reconnect=True)
            async with client:
                await fake.drop_connections()
                await client.connection.closed.wait()
                await trio.testing.wait_all_tasks_blocked()  # the supervisor waits to retry
                owner.cancel()
                await trio.sleep_forever()
    assert owner.cancelled_caught
    assert all_tasks() == before
    assert not client.is_connected


async def test_the_password_stays_out_of_reconnect_logs_and_gaps(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Pa55-reconnect-s3cret"
    refused = trio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "refused the credentials" in record.getMessage():
                refused.set()  # logged from the event loop's thread

    watch = Watch()
    logging.getLogger("genesis_trio").addHandler(watch)
    try:
        with caplog.at_level(logging.DEBUG, logger="genesis_trio"):
            async with (
                switch_on(password=secret) as fake,
                Inbound(fake.host, fake.port, secret, reconnect=NO_JITTER) as client,
                client.gaps() as gaps,
            ):
                fake.password = "rotated"  # the next attempts are refused
                await fake.drop_connections()
                with trio.fail_after(120):
                    await refused.wait()
                fake.password = secret
                with trio.fail_after(120):
                    gap = await gaps.receive()
    finally:
        logging.getLogger("genesis_trio").removeHandler(watch)
    assert gap.attempts > 1
    assert "refused the credentials" in caplog.text
    assert "reconnected" in caplog.text
    assert secret not in caplog.text
    assert secret not in repr(gap)
    assert secret not in repr(client)


async def test_liveness_declares_a_silent_switch_dead(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with Inbound(fake.host, fake.port, "ClueCon", liveness_timeout=30) as client:
        assert "event plain HEARTBEAT" in fake.commands_received
        start = trio.current_time()
        # A HEARTBEAT every 20 s keeps it alive, however long.
        for _ in range(10):
            await trio.sleep(20)
            fake.fire(fake.build_event("HEARTBEAT"))
        assert client.is_connected
        # Then the switch goes quiet.
        with trio.fail_after(60):
            await client.connection.closed.wait()
        assert trio.current_time() - start >= 200 + 30
        assert "liveness_timeout" in str(client.connection.lost_reason)
        with pytest.raises(ConnectionLost, match="liveness_timeout"):
            await client.api("status")


async def test_liveness_heartbeats_pass_the_users_filters(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with Inbound(fake.host, fake.port, "ClueCon", liveness_timeout=30) as client:
        await client.filter("Unique-ID", "nobody")
        assert ("Event-Name", "HEARTBEAT") in client.switch_filters
        for _ in range(5):
            await trio.sleep(20)
            fake.fire(fake.build_event("HEARTBEAT"))
        assert client.is_connected


async def test_liveness_with_reconnect_comes_back(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        Inbound(
            fake.host, fake.port, "ClueCon", liveness_timeout=30, reconnect=NO_JITTER
        ) as client,
        client.gaps() as gaps,
    ):
        with trio.fail_after(120):
            gap = await gaps.receive()
        assert "liveness_timeout" in gap.reason
        assert client.ready
        assert fake.commands_received.count("event plain HEARTBEAT") == 2


async def test_ops_readiness_of_a_reconnecting_inbound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = Backoff(initial=30, maximum=30, jitter=0)
    async with (
        switch_on() as fake,
        Inbound(fake.host, fake.port, "ClueCon", reconnect=slow) as client,
    ):
        ops = OpsServer(client)
        assert ops.ready
        await fake.drop_connections()
        await client.connection.closed.wait()
        assert not ops.ready
        with trio.fail_after(120):
            await client.wait_ready()
        assert ops.ready


async def test_the_gap_marker_comes_before_the_new_connections_first_event(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    # Asked for in two commands, the events come back as one on the new connection: a
    # command line the fake sees only once the reconnect is asking for events again.
    async with Inbound(fake.host, fake.port, "ClueCon", reconnect=NO_JITTER) as client:
        await client.events("CHANNEL_ANSWER")
        await client.events("demo::x")
        await client.filter("X-Keep", "yes")
        async with client.subscribe("demo::x", gaps=True) as events:

            async def fire_while_the_reconnect_restores() -> None:
                await fake.wait_for_command("event plain CHANNEL_ANSWER CUSTOM demo::x")
                # Until the client is ready again (the filter is still to be asked again
                # after the events), one event per scheduler pass, bounded by that.
                while not client.ready:
                    fake.fire(custom(fake, "demo::x", **{"X-Keep": "yes", "X-N": "early"}))
                    await trio.lowlevel.checkpoint()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(fire_while_the_reconnect_restores)
                await lose_and_wait_ready(fake, client)
            with trio.fail_after(10):
                first = await events.receive()
                second = await events.receive()
            assert isinstance(first, ConnectionGap)
            assert isinstance(second, Event)
            assert second["X-N"] == "early"
