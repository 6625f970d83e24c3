"""The connection core (issue 10): the reader never waits on a consumer, the peer's goodbye
fails what is pending, writes and commands obey the caller's deadlines, nothing is written
from a cancelled scope, and a lost command never reports less than how far it got."""

from __future__ import annotations

import contextlib
import re

import anyio
import anyio.lowlevel
import pytest

from genesis_trio import (
    CommandStage,
    ConnectionLost,
    Event,
    Inbound,
    OperationTimeout,
    Overflow,
    SubscriptionOverflow,
)
from genesis_trio.testing import FakeFreeSWITCH

from ._peer import (
    DISCONNECT_NOTICE,
    Peer,
    api_response,
    plain_event,
    reply,
    resetting_thread_peer,
    scripted_peer,
)

pytestmark = pytest.mark.anyio


def connect(fake: FakeFreeSWITCH, **options: float | None) -> Inbound:
    return Inbound(fake.host, fake.port, "ClueCon", **options)  # type: ignore[arg-type]


def burst(fake: FakeFreeSWITCH, subclass: str, count: int) -> list[Event]:
    return [fake.build_event("CUSTOM", {"X-N": str(n)}, subclass=subclass) for n in range(count)]


# --- item 2: the reader never waits on a handler or a subscriber -------------------------


async def test_20000_events_into_a_handler_that_awaits_api_complete(
    fake: FakeFreeSWITCH,
) -> None:
    """The old pool parked the reader after 10 000 queued calls: the handler's own api()
    reply sat behind it and everything hung (311 handled). Now the reader never waits:
    with the default buffer the registration applies its policy, the connection lives."""
    count = 20_000
    handled = 0
    all_done = anyio.Event()
    async with connect(fake) as client:

        async def handler(event: Event) -> None:
            nonlocal handled
            await client.api("echo x")
            handled += 1
            if handled == count:
                all_done.set()

        registration = client.on("CUSTOM", handler)
        await client.events("CUSTOM", "load::burst")
        with anyio.fail_after(120):
            await fake.blast(burst(fake, "load::burst", count))
            assert (await client.api("echo alive")).strip() == "alive"
            if registration.error is None:
                await all_done.wait()
        # Either the handler kept up, or it fell 10 000 behind and was stopped, loudly.
        assert handled == count or isinstance(registration.error, SubscriptionOverflow)
        assert (await client.api("echo still alive")).strip() == "still alive"


@pytest.mark.parametrize("anyio_backend", ["trio"])  # heavy: one backend is enough
async def test_a_handler_with_room_for_the_burst_handles_all_20000(
    fake: FakeFreeSWITCH,
) -> None:
    count = 20_000
    handled = 0
    all_done = anyio.Event()
    async with connect(fake) as client:

        async def handler(event: Event) -> None:
            nonlocal handled
            await client.api("echo x")
            handled += 1
            if handled == count:
                all_done.set()

        client.on("CUSTOM", handler, max_buffer=count)
        await client.events("CUSTOM", "load::burst")
        with anyio.fail_after(120):
            await fake.blast(burst(fake, "load::burst", count))
            await all_done.wait()
    assert handled == count


async def test_a_handler_overflow_drop_oldest_keeps_the_connection_and_counts(
    fake: FakeFreeSWITCH,
) -> None:
    started = anyio.Event()
    gate = anyio.Event()
    four = anyio.Event()
    seen: list[str] = []
    async with connect(fake) as client:

        async def handler(event: Event) -> None:
            started.set()
            await gate.wait()
            seen.append(event["X-N"])
            if len(seen) == 4:
                four.set()

        registration = client.on("CUSTOM", handler, max_buffer=3, overflow=Overflow.DROP_OLDEST)
        await client.events("CUSTOM", "drop::t")
        events = burst(fake, "drop::t", 10)
        with anyio.fail_after(20):
            await fake.blast(events[:1])
            await started.wait()
            await fake.blast(events[1:])
            await client.api("echo sync")  # every event above has been read
            gate.set()
            await four.wait()
    # The first call was already running; of the 9 that waited, the 3 latest were kept.
    assert seen == ["0", "7", "8", "9"]
    assert registration.dropped == 6


async def test_a_handler_overflow_error_stops_only_that_handler(fake: FakeFreeSWITCH) -> None:
    started = anyio.Event()
    gate = anyio.Event()
    slow: list[str] = []
    fast: list[str] = []
    async with connect(fake) as client:

        async def slow_handler(event: Event) -> None:
            started.set()
            await gate.wait()
            slow.append(event["X-N"])

        async def fast_handler(event: Event) -> None:
            fast.append(event["X-N"])

        stopped = client.on("CUSTOM", slow_handler, max_buffer=2)
        client.on("CUSTOM", fast_handler)
        await client.events("CUSTOM", "err::t")
        events = burst(fake, "err::t", 6)
        with anyio.fail_after(20):
            await fake.blast(events[:1])
            await started.wait()
            await fake.blast(events[1:])
            await client.api("echo sync")
            gate.set()
            await anyio.wait_all_tasks_blocked()
        assert isinstance(stopped.error, SubscriptionOverflow)
    assert fast == [str(n) for n in range(6)]
    assert slow == ["0"]  # the call that was running finished; the rest were refused loudly


async def test_overflow_block_is_deprecated_and_never_stalls_the_connection(
    fake: FakeFreeSWITCH,
) -> None:
    async with connect(fake) as client:
        with pytest.warns(DeprecationWarning, match="BLOCK"):
            registration = client.on("CUSTOM", lambda event: None, overflow=Overflow.BLOCK)
        assert registration.overflow is Overflow.ERROR
        async with contextlib.AsyncExitStack() as stack:
            with pytest.warns(DeprecationWarning, match="BLOCK"):
                events = await stack.enter_async_context(
                    client.subscribe("block::t", max_buffer=1, overflow=Overflow.BLOCK)
                )
            with anyio.fail_after(20):
                await fake.blast(burst(fake, "block::t", 3))
                assert (await client.api("echo alive")).strip() == "alive"
            assert (await events.receive())["X-N"] == "0"
            with pytest.raises(SubscriptionOverflow):
                await events.receive()


# --- item 3: receive_nowait ----------------------------------------------------------------


async def test_receive_nowait_leaves_no_stalled_reader_and_raises_after_close(
    fake: FakeFreeSWITCH,
) -> None:
    async with connect(fake) as client:
        async with contextlib.AsyncExitStack() as stack:
            with pytest.warns(DeprecationWarning, match="BLOCK"):
                events = await stack.enter_async_context(
                    client.subscribe("nowait::t", max_buffer=1, overflow=Overflow.BLOCK)
                )
            with anyio.fail_after(20):
                await fake.blast(burst(fake, "nowait::t", 2))
                # The old reader waited for room on the second event; receive_nowait freed
                # room without waking it: an empty buffer and a stalled connection.
                await client.api("echo sync")  # both events were read
                first = events.receive_nowait()
                assert first is not None
                assert first["X-N"] == "0"
                assert (await client.api("echo alive")).strip() == "alive"
        with pytest.raises(anyio.ClosedResourceError):
            events.receive_nowait()
        async with client.subscribe("nowait::u") as events:
            assert events.receive_nowait() is None
        with pytest.raises(anyio.ClosedResourceError):
            events.receive_nowait()


# --- item 4: the peer's goodbye ------------------------------------------------------------


async def test_a_disconnect_notice_without_close_fails_pending_commands() -> None:
    async def goodbye_without_closing(peer: Peer) -> None:
        await peer.read_command()  # api msleep: never answered
        await peer.send(DISCONNECT_NOTICE)
        await anyio.sleep_forever()

    async with (
        scripted_peer(goodbye_without_closing) as (host, port),
        Inbound(host, port, "ClueCon") as client,
    ):
        with anyio.fail_after(20), pytest.raises(ConnectionLost) as caught:
            await client.api("msleep 100000")
        assert caught.value.stage is CommandStage.SENT
        assert "goodbye" in str(caught.value).lower()
        assert not client.is_connected


async def test_a_goodbye_from_the_peer_is_connection_lost_for_an_async_for() -> None:
    async def event_then_goodbye(peer: Peer) -> None:
        await peer.read_command()  # event plain ALL
        await peer.send(reply("+OK event listener enabled plain"))
        await peer.read_command()  # api status
        await peer.send(api_response("UP\n"))
        await peer.send(plain_event("HEARTBEAT") + DISCONNECT_NOTICE)

    seen: list[str | None] = []
    async with (
        scripted_peer(event_then_goodbye) as (host, port),
        Inbound(host, port, "ClueCon") as client,
        client.subscribe("ALL") as events,
    ):
        await client.api("status")

        async def iterate() -> None:
            async for event in events:
                seen.append(event.name)

        with anyio.fail_after(20), pytest.raises(ConnectionLost):
            await iterate()
    assert seen == ["HEARTBEAT"]


async def test_our_own_exit_still_ends_an_async_for_cleanly(fake: FakeFreeSWITCH) -> None:
    ended = anyio.Event()
    async with anyio.create_task_group() as task_group:
        async with connect(fake) as client:
            subscription = client.connection.subscribe(["ALL"])

            async def iterate() -> None:
                async for _ in subscription:
                    pass
                ended.set()

            task_group.start_soon(iterate)
            await anyio.lowlevel.checkpoint()
        with anyio.fail_after(20):
            await ended.wait()


# --- item 5: writes obey the caller's deadline ----------------------------------------------


async def _stop_reading(peer: Peer) -> None:
    await anyio.sleep_forever()


BIG = "x" * (32 << 20)  # far more than loopback socket buffers hold


async def test_a_cancelled_write_breaks_the_connection_and_returns_at_once() -> None:
    async with (
        scripted_peer(_stop_reading) as (host, port),
        Inbound(host, port, "ClueCon") as client,
    ):
        other: list[BaseException] = []
        scope = anyio.CancelScope()

        async def big_command() -> None:
            with scope:
                await client.api("echo " + BIG)

        async def second_command() -> None:
            try:
                await client.api("status")
            except ConnectionLost as exc:
                other.append(exc)

        # The old shielded write ignored the cancellation for up to write_timeout.
        with anyio.fail_after(60):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(big_command)
                await anyio.wait_all_tasks_blocked()  # the write is stuck: nobody reads
                task_group.start_soon(second_command)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
        assert scope.cancelled_caught
        assert not client.is_connected
        assert "cancelled half-way" in str(client.connection.lost_reason)
        assert len(other) == 1
        with pytest.raises(ConnectionLost) as caught:
            await client.api("status")
        assert caught.value.stage is CommandStage.NOT_SENT


async def test_write_timeout_fails_the_connection_when_the_peer_stops_reading() -> None:
    async with (
        scripted_peer(_stop_reading) as (host, port),
        Inbound(host, port, "ClueCon", write_timeout=0.5) as client,
    ):
        with anyio.fail_after(60), pytest.raises(ConnectionLost) as caught:
            await client.api("echo " + BIG)
        assert caught.value.stage is CommandStage.SENT
        assert "timed out" in str(caught.value)
        assert not client.is_connected


# --- item 6: a command's own timeout --------------------------------------------------------


async def test_api_timeout_raises_operation_timeout_and_absorbs_the_late_reply(
    fake: FakeFreeSWITCH,
) -> None:
    release = anyio.Event()

    async def slow(argument: str) -> str:
        await release.wait()
        return "late\n"

    fake.register_api("slow", slow)
    async with connect(fake) as client:
        with anyio.fail_after(30), pytest.raises(OperationTimeout) as caught:
            await client.api("slow", timeout=0.2)
        assert isinstance(caught.value, TimeoutError)
        release.set()
        # The late reply goes to the abandoned slot, not to the next command.
        assert (await client.api("echo next")).strip() == "next"


async def test_client_wide_command_timeout_and_per_call_override(fake: FakeFreeSWITCH) -> None:
    release = anyio.Event()

    async def slow(argument: str) -> str:
        await release.wait()
        return "late\n"

    fake.register_api("slow", slow)
    async with connect(fake, command_timeout=0.2) as client:
        with anyio.fail_after(30):
            with pytest.raises(TimeoutError):
                await client.api("slow")
            with pytest.raises(OperationTimeout):
                await client.bgapi("slow")
            release.set()
            assert (await client.api("slow", timeout=float("inf"))).strip() == "late"
            assert (await client.bgapi("echo job", timeout=10)).strip() == "job"


# --- item 7: nothing is written from a cancelled scope -------------------------------------


async def test_a_command_from_a_cancelled_scope_is_never_written(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.bgapi("echo ready")  # BACKGROUND_JOB is subscribed already
        with anyio.CancelScope() as scope:
            scope.cancel()
            await client.bgapi("originate loopback/9999 &park()")
        with anyio.move_on_after(0):
            await client.api("echo expired")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await client.send("api echo cancelled")
        assert (await client.api("echo after")).strip() == "after"
        written = fake.commands_received
        assert not any("originate" in c or "expired" in c or "cancelled" in c for c in written)
        assert not fake.channels


# --- item 8: the stage never understates ----------------------------------------------------


async def test_a_command_the_peer_read_is_never_reported_not_sent() -> None:
    runs = 200
    stages: list[CommandStage | None] = []
    async with resetting_thread_peer(runs) as (host, port):
        for _ in range(runs):
            async with Inbound(host, port, "ClueCon") as client:
                with anyio.fail_after(20), pytest.raises(ConnectionLost) as caught:
                    await client.api("status")
                stages.append(caught.value.stage)
    assert CommandStage.NOT_SENT not in stages
    assert set(stages) == {CommandStage.SENT}


# --- item 11: no handler runs after the connection is gone ---------------------------------


async def test_no_handler_call_starts_after_the_connection_is_lost(
    fake: FakeFreeSWITCH, caplog: pytest.LogCaptureFixture
) -> None:
    """The old pool ran every queued call after the loss: one ERROR traceback per event."""
    calls = 0
    first = anyio.Event()
    gate = anyio.Event()
    async with connect(fake) as client:

        async def handler(event: Event) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                first.set()
                await gate.wait()
            await client.api("echo handled")

        client.on("CUSTOM", handler)
        await client.events("CUSTOM", "lost::t")
        with anyio.fail_after(20):
            await fake.blast(burst(fake, "lost::t", 500))
            await client.api("echo sync")  # all 500 read and queued
            await first.wait()
            await fake.drop_connections()
            await client.connection.closed.wait()
            gate.set()
            await anyio.wait_all_tasks_blocked()
        assert calls == 1
    assert caplog.text.count("event handler") <= 1


async def test_leaving_the_block_stops_handler_delivery(fake: FakeFreeSWITCH) -> None:
    calls = 0
    first = anyio.Event()
    never = anyio.Event()

    async def handler(event: Event) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            first.set()
            await never.wait()

    async with connect(fake) as client:
        client.on("CUSTOM", handler)
        await client.events("CUSTOM", "stop::t")
        with anyio.fail_after(20):
            await fake.blast(burst(fake, "stop::t", 500))
            await client.api("echo sync")  # all 500 read and queued
            await first.wait()
    assert calls == 1


# --- item 16: a broken connection says why --------------------------------------------------


async def test_a_reset_connection_says_why(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.api("status")
        await fake.drop_connections(reset=True)
        with anyio.fail_after(20):
            await client.connection.closed.wait()
        reason = str(client.connection.lost_reason)
    assert not reason.rstrip().endswith(":")
    assert re.search(r"connection (broke: \w|closed by peer)", reason), reason


# --- design point: the library never cancels the user's block --------------------------


async def test_a_peer_failure_never_cancels_the_users_block() -> None:
    """Inbound enters its task group by hand, so the block runs inside it; the library's
    tasks must never raise into it: a protocol error shows as ConnectionLost, not Cancelled."""

    async def garbage(peer: Peer) -> None:
        await peer.read_command()
        await peer.send(b"Content-Length: nope\n\n")

    async with (
        scripted_peer(garbage) as (host, port),
        Inbound(host, port, "ClueCon") as client,
    ):
        with anyio.fail_after(20), pytest.raises(ConnectionLost) as caught:
            await client.api("status")
        assert "protocol error" in str(caught.value)
        for _ in range(10):
            await anyio.lowlevel.checkpoint()  # still running: nothing cancelled us
        reached_the_end = True
    assert reached_the_end
