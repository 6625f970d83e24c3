"""playback and execute: every outcome, over an outbound Session and over Inbound.

The sleeps here are points in a scripted timeline on trio's MockClock (``autojump_clock``):
virtual seconds, skipped as soon as every task waits; nothing waits for real time to pass.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import Channel, ChannelHangup, ConnectionLost, Event, Inbound
from genesis_trio.testing import Destination, FakeFreeSWITCH

from ._calls import call_over
from ._helpers import all_tasks

pytestmark = pytest.mark.trio


async def test_blocking_playback_returns_its_own_completion(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("ivr/welcome.wav", 3)
    async with call_over(kind, fake) as call:
        started = trio.current_time()
        completion = await call.channel.playback("ivr/welcome.wav")
        assert trio.current_time() - started == pytest.approx(3)
        assert completion.name == "CHANNEL_EXECUTE_COMPLETE"
        assert completion["Application-Response"] == "FILE PLAYED"
        run = call.far.applications[-1]
        assert (run.name, run.data, run.interrupted) == ("playback", "ivr/welcome.wav", False)
        assert completion.application_uuid == run.uuid


async def test_completion_is_matched_by_application_uuid_not_by_name(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("first.wav", 5)
    fake.set_media_duration("second.wav", 1)
    async with call_over(kind, fake) as call:
        first_uuid = await call.channel.playback("first.wav", block=False)
        started = trio.current_time()
        second = await call.channel.playback("second.wav")
        # The first playback's completion (same application) came 5 s in: not ours.
        assert trio.current_time() - started == pytest.approx(6)
        assert second.application_uuid != first_uuid
        assert second["Application-Data"] == "second.wav"


async def test_own_timeout_stops_the_playback_on_the_switch(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("long.wav", 60)
    async with call_over(kind, fake) as call:
        started = trio.current_time()
        with pytest.raises(TimeoutError):
            await call.channel.playback("long.wav", timeout=2)
        assert trio.current_time() - started == pytest.approx(2)
        await trio.testing.wait_all_tasks_blocked()
        run = call.far.applications[-1]
        assert run.interrupted
        assert run.response == "FILE PLAYED"
        assert call.far.breaks == [False]
        assert f"api uuid_break {call.far.uuid}" in fake.commands_received


async def test_outer_cancellation_stops_the_playback_and_leaves_no_task(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("long.wav", 60)
    async with call_over(kind, fake) as call:
        await trio.testing.wait_all_tasks_blocked()
        before = all_tasks()
        with trio.move_on_after(4) as scope:
            await call.channel.playback("long.wav")
        assert scope.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert all_tasks() == before
        run = call.far.applications[-1]
        assert (run.name, run.interrupted) == ("playback", True)
        assert call.far.application in ("park", "socket")  # parked again: playback really over
        assert call.far.breaks == [False]
        # The channel is usable afterwards: the break flag was consumed by our playback.
        fake.set_media_duration("short.wav", 1)
        completion = await call.channel.playback("short.wav")
        assert not call.far.applications[-1].interrupted
        assert completion["Application-Data"] == "short.wav"


async def test_cancelled_before_it_started_waits_for_the_start_then_breaks(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("queued.wav", 30)
    fake.set_media_duration("blocker.wav", 0.5)
    async with call_over(kind, fake) as call:
        await call.channel.playback("blocker.wav", block=False)
        with trio.move_on_after(0.1):
            await call.channel.playback("queued.wav")
        # Ours was queued behind the blocker: it was broken once it started,
        # not before (an early break would have hit the blocker instead).
        await trio.testing.wait_all_tasks_blocked()
        blocker, queued = call.far.applications[-2:]
        assert (blocker.data, blocker.interrupted) == ("blocker.wav", False)
        assert (queued.data, queued.interrupted) == ("queued.wav", True)


async def test_hangup_during_playback_raises_at_once(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("long.wav", 60)
    async with call_over(kind, fake) as call:
        async with trio.open_nursery() as nursery:

            async def caller_hangs_up() -> None:
                await call.far.wait_for_application("playback")
                await trio.sleep(2)
                call.far.request_hangup("NORMAL_CLEARING")

            nursery.start_soon(caller_hangs_up)
            started = trio.current_time()
            with pytest.raises(ChannelHangup) as caught:
                await call.channel.playback("long.wav")
            assert trio.current_time() - started == pytest.approx(2)
            assert caught.value.cause == "NORMAL_CLEARING"
            assert caught.value.uuid == call.far.uuid
        # Nothing is sent to stop a playback on a channel that is gone.
        assert not any(line.startswith("api uuid_break") for line in fake.commands_received)


async def test_connection_loss_during_playback(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("long.wav", 60)
    async with call_over(kind, fake) as call, trio.open_nursery() as nursery:

        async def switch_dies() -> None:
            await call.far.wait_for_application("playback")
            await fake.drop_connections()

        nursery.start_soon(switch_dies)
        with pytest.raises(ConnectionLost):
            await call.channel.playback("long.wav")


async def test_execute_any_application(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with call_over(kind, fake) as call:
        completion = await call.channel.execute("set", "colour=blue")
        assert completion.application == "set"
        assert call.far.variables["colour"] == "blue"
        assert await call.channel.get_variable("colour") == "blue"
        event_uuid = await call.channel.execute("sleep", "500", block=False)
        assert isinstance(event_uuid, str)
        run = await call.far.wait_for_application("sleep")
        assert run.uuid == event_uuid
        with pytest.raises(TimeoutError):
            await call.channel.execute("sleep", "10000", timeout=1)
        assert call.far.applications[-1].interrupted


async def test_execute_outcomes_cancelled_hangup_and_lost(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with call_over(kind, fake) as call:
        # cancelled: the caller's scope; the sleep is broken on the switch
        with trio.move_on_after(1) as scope:
            await call.channel.execute("sleep", "60000")
        assert scope.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert call.far.applications[-1].interrupted
        assert call.far.breaks == [False]
        # connection loss / hangup: at once, whichever comes
        async with trio.open_nursery() as nursery:

            async def far_end() -> None:
                await trio.sleep(2)
                call.far.request_hangup("USER_BUSY")

            nursery.start_soon(far_end)
            started = trio.current_time()
            with pytest.raises(ChannelHangup) as caught:
                await call.channel.execute("sleep", "60000")
            assert caught.value.cause == "USER_BUSY"
            assert trio.current_time() - started == pytest.approx(2)
        with pytest.raises(ChannelHangup):
            await call.channel.execute("sleep", "1")  # fails before sending anything


async def test_execute_when_the_connection_is_lost(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with call_over(kind, fake) as call:
        async with trio.open_nursery() as nursery:

            async def switch_dies() -> None:
                await call.far.wait_for_application("sleep")
                await fake.drop_connections()

            nursery.start_soon(switch_dies)
            with pytest.raises(ConnectionLost):
                await call.channel.execute("sleep", "60000")
        with pytest.raises(ConnectionLost):
            await call.channel.execute("sleep", "1")


async def test_a_cancel_landing_after_the_completion_sends_no_break(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 10, item 15: the completion was read, the waiter cancelled before it saw it.

    Breaking then could only hit whatever runs next; nothing is sent, and the next prompt
    plays in full.
    """
    fake.set_media_duration("first.wav", 1)
    fake.set_media_duration("next.wav", 3)
    async with call_over(kind, fake) as call:
        with trio.CancelScope() as scope:

            def cancel_on_completion(event: Event) -> bool:
                # Called by the reader, before the channel's own subscription gets the event.
                if event.get("Application-Data") == "first.wav":
                    scope.cancel()
                return False

            tap = call.channel.client.connection.subscribe(
                ("CHANNEL_EXECUTE_COMPLETE",), matches=cancel_on_completion
            )
            try:
                await call.channel.playback("first.wav")
            finally:
                tap.close()
        assert scope.cancelled_caught
        started = trio.current_time()
        completion = await call.channel.playback("next.wav")
        assert trio.current_time() - started == pytest.approx(3)
        assert call.far.breaks == []
        assert not call.far.applications[-1].interrupted
        assert completion["Application-Data"] == "next.wav"


async def test_a_break_that_finds_nothing_running_never_cuts_the_next_prompt(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    """As on the real switch (tests/real/test_break.py): every application clears the flag."""
    fake.set_media_duration("next.wav", 3)
    async with call_over(kind, fake) as call:
        await call.channel.client.api(f"uuid_break {call.channel.uuid}")
        started = trio.current_time()
        await call.channel.playback("next.wav")
        assert trio.current_time() - started == pytest.approx(3)
        assert not call.far.applications[-1].interrupted


async def test_cancelled_while_queued_behind_another_breaks_only_ours(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Never `uuid_break all`: the application running now and the next one are not ours."""
    fake.set_media_duration("blocker.wav", 5)
    fake.set_media_duration("queued.wav", 30)
    fake.set_media_duration("next.wav", 2)
    async with call_over(kind, fake) as call:
        await call.channel.playback("blocker.wav", block=False)
        with trio.move_on_after(0.1):
            await call.channel.playback("queued.wav")
        # The caller goes on at once (after at most half the cleanup deadline)...
        completion = await call.channel.playback("next.wav")
        blocker, queued, following = call.far.applications[-3:]
        assert (blocker.data, blocker.interrupted) == ("blocker.wav", False)
        # ...and ours was broken the moment it started, never before.
        assert (queued.data, queued.interrupted) == ("queued.wav", True)
        assert (following.data, following.interrupted) == ("next.wav", False)
        assert completion["Application-Data"] == "next.wav"
        assert call.far.breaks == [False]


async def test_the_stop_of_a_queued_application_belongs_to_the_connection(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    """Design point of issue 10: the library's own follow-up work runs in the connection's task
    group: the caller's nursery closes at once, and the work ends with the connection."""
    fake.set_media_duration("blocker.wav", 60)
    fake.set_media_duration("queued.wav", 30)
    fake.add_destination("user/1000", Destination(answer_after=0))
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, "user/1000")
        await channel.playback("blocker.wav", block=False)
        started = trio.current_time()
        async with trio.open_nursery() as callers:

            async def prompt() -> None:
                with trio.move_on_after(0.1):
                    await channel.playback("queued.wav")

            callers.start_soon(prompt)
        # Half the cleanup deadline, not the 60 s the blocker still plays.
        assert trio.current_time() - started == pytest.approx(1.1)
        # Still waiting for ours to start, outside the callers' nursery that is gone.
        watchers = [t for t in all_tasks() if t.name.startswith("stop playback of")]
        assert len(watchers) == 1
    # Leaving the client's block ended it (the fake's call still plays on: not ours).
    assert not [t for t in all_tasks() if t.name.startswith("stop playback of")]


async def test_a_playback_from_a_cancelled_scope_sends_nothing_and_stops_nothing(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with call_over(kind, fake) as call:
        sent = len(fake.commands_received)
        started = trio.current_time()
        with trio.CancelScope() as scope:
            scope.cancel()
            await call.channel.playback("ivr/welcome.wav")
        assert trio.current_time() == started  # no wait for an application never sent
        await trio.testing.wait_all_tasks_blocked()
        assert fake.commands_received[sent:] == []
        assert not [t for t in all_tasks() if t.name.startswith("stop playback of")]
