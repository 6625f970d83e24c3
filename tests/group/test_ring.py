"""RingGroup.ring against the fake switch over a real loopback socket.

The fake runs on AnyIO's clock, so with trio's MockClock (``autojump_clock``)
the ringing costs no real time and every duration below is exact.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import ChannelHangup, ConnectionLost, Inbound
from genesis_trio.channel import Channel
from genesis_trio.group import RingGroup, RingMode
from genesis_trio.testing import Destination, FakeFreeSWITCH
from task_tree import tasks_under

pytestmark = pytest.mark.trio


def our_tasks() -> set[trio.lowlevel.Task]:
    """The test's task and every task under it (the client's included; the fake
    switch runs in its fixture's task, so its simulated channels are not)."""
    return tasks_under(trio.lowlevel.current_task())


def causes(fake: FakeFreeSWITCH) -> dict[str, str | None]:
    """Hangup cause of every leg ever created, by dial path."""
    return {leg.dial_path: leg.hangup_cause for leg in fake.channel_history}


def originated(fake: FakeFreeSWITCH) -> list[str]:
    """Dial paths in the order the switch created them."""
    return [leg.dial_path for leg in fake.channel_history]


# --- parallel ------------------------------------------------------------------------------


async def test_parallel_first_answer_wins_and_the_losers_lose_the_race(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1001", Destination(answer_after=5))
    fake.add_destination("user/1002", Destination(answer_after=2))
    fake.add_destination("user/1003", Destination(answer_after=None))
    async with Inbound(fake.host, fake.port) as client:
        started = trio.current_time()
        answered = await RingGroup.ring(
            client, ["user/1001", "user/1002", "user/1003"], RingMode.PARALLEL, timeout=10
        )
        assert trio.current_time() - started == pytest.approx(2)
        assert answered is not None
        assert answered.dial_path == "user/1002"
        assert answered.answered
        assert not answered.hung_up
        # Nothing is left ringing: the switch holds the winner only, right away.
        assert set(fake.channels) == {answered.uuid}
        assert causes(fake) == {
            "user/1001": "LOSE_RACE",
            "user/1002": None,
            "user/1003": "LOSE_RACE",
        }
        # All legs rang at once.
        assert len({leg.created_us for leg in fake.channel_history}) == 1


async def test_legs_answering_together_leave_one_winner(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=3))
    async with Inbound(fake.host, fake.port) as client:
        answered = await RingGroup.ring(client, ["user/1", "user/2", "user/3"], timeout=10)
        assert answered is not None
        await trio.testing.wait_all_tasks_blocked()
        assert set(fake.channels) == {answered.uuid}
        lost = [leg.hangup_cause for leg in fake.channel_history if leg.uuid != answered.uuid]
        assert lost == ["LOSE_RACE", "LOSE_RACE"]


async def test_nobody_answers_returns_none_at_the_deadline_with_every_leg_gone(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=None))
    async with Inbound(fake.host, fake.port) as client:
        started = trio.current_time()
        answered = await RingGroup.ring(client, ["user/1", "user/2"], timeout=7.5)
        assert answered is None
        assert trio.current_time() - started == pytest.approx(7.5)
        assert dict(fake.channels) == {}
        # What FreeSWITCH's own originate uses when its timeout runs out.
        assert causes(fake) == {"user/1": "NO_ANSWER", "user/2": "NO_ANSWER"}


async def test_all_busy_returns_none_at_once(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1", Destination(reject_cause="USER_BUSY"))
    fake.add_destination("user/2", Destination(reject_cause="CALL_REJECTED", answer_after=1))
    async with Inbound(fake.host, fake.port) as client:
        started = trio.current_time()
        answered = await RingGroup.ring(client, ["user/1", "user/2", "user/unrouted"], timeout=30)
        assert answered is None
        # The ring ends when the last leg failed, not at the deadline.
        assert trio.current_time() - started == pytest.approx(1)
        assert causes(fake) == {"user/1": "USER_BUSY", "user/2": "CALL_REJECTED"}
        assert not any("uuid_kill" in line for line in fake.commands_received)


async def test_variables_reach_every_leg(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1", Destination(answer_after=1))
    fake.add_destination("user/2", Destination(answer_after=None))
    async with Inbound(fake.host, fake.port) as client:
        answered = await RingGroup.ring(
            client,
            ["user/1", "user/2"],
            timeout=5,
            variables={"origination_caller_id_number": "5551234", "ringback": "%(2000,4000,440)"},
        )
        assert answered is not None
        for leg in fake.channel_history:
            assert leg.variables["origination_caller_id_number"] == "5551234"
            assert leg.variables["ringback"] == "%(2000,4000,440)"


async def test_caller_cancelling_hangs_up_every_leg_and_leaves_no_task(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=20))
    async with Inbound(fake.host, fake.port) as client:
        await client.api("status")  # the connection is fully up before counting tasks
        await trio.testing.wait_all_tasks_blocked()
        before = our_tasks()
        with trio.move_on_after(4) as scope:
            await RingGroup.ring(client, ["user/1", "user/2", "user/3"], timeout=30)
        assert scope.cancelled_caught
        assert trio.current_time() == pytest.approx(4)
        await trio.testing.wait_all_tasks_blocked()
        assert dict(fake.channels) == {}
        assert set(causes(fake).values()) == {"ORIGINATOR_CANCEL"}
        assert our_tasks() <= before


async def test_cancelled_before_any_leg_exists_still_hangs_them_up(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=20))
    async with Inbound(fake.host, fake.port) as client:
        with trio.CancelScope() as scope:
            scope.cancel()  # cancelled at the very first checkpoint
            await RingGroup.ring(client, ["user/1", "user/2"], timeout=30)
        await trio.testing.wait_all_tasks_blocked()
        assert dict(fake.channels) == {}


async def test_answer_racing_a_cancellation_is_hung_up_too(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    # The leg answers at the very moment the caller's deadline expires.
    fake.add_destination("user/1", Destination(answer_after=4))
    async with Inbound(fake.host, fake.port) as client:
        answered: Channel | None = None
        with trio.move_on_after(4) as scope:
            answered = await RingGroup.ring(client, ["user/1"], timeout=30)
        await trio.testing.wait_all_tasks_blocked()
        leg = fake.channel_history[0]
        assert scope.cancelled_caught
        assert answered is None
        # It answered, and the cancelled ring hung it up rather than dropping it.
        assert leg.answered
        assert leg.hangup_cause == "ORIGINATOR_CANCEL"
        assert dict(fake.channels) == {}


# --- the caller's channel ---------------------------------------------------------------


async def test_caller_hanging_up_ends_the_ring_with_channel_hangup(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/caller", Destination(answer_after=0, hangup_after=3))
    fake.add_destination("user/*", Destination(answer_after=20))
    async with Inbound(fake.host, fake.port) as client:
        caller = await Channel.create(client, "user/caller")
        started = trio.current_time()
        with pytest.raises(ChannelHangup) as raised:
            await RingGroup.ring(client, ["user/1", "user/2"], timeout=30, caller=caller)
        assert raised.value.uuid == caller.uuid
        assert raised.value.cause == "NORMAL_CLEARING"
        assert trio.current_time() - started == pytest.approx(3)
        await trio.testing.wait_all_tasks_blocked()
        assert dict(fake.channels) == {}
        assert causes(fake) == {
            "user/caller": "NORMAL_CLEARING",
            "user/1": "ORIGINATOR_CANCEL",
            "user/2": "ORIGINATOR_CANCEL",
        }


async def test_caller_already_gone_rings_nobody(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/caller", Destination(answer_after=0))
    fake.add_destination("user/1", Destination(answer_after=1))
    async with Inbound(fake.host, fake.port) as client:
        caller = await Channel.create(client, "user/caller")
        await caller.hangup()
        with pytest.raises(ChannelHangup):
            await RingGroup.ring(client, ["user/1"], caller=caller)
        assert originated(fake) == ["user/caller"]


async def test_caller_that_stays_does_not_disturb_the_ring(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/caller", Destination(answer_after=0))
    fake.add_destination("user/1", Destination(answer_after=2))
    async with Inbound(fake.host, fake.port) as client:
        caller = await Channel.create(client, "user/caller")
        await trio.testing.wait_all_tasks_blocked()
        before = our_tasks()
        answered = await RingGroup.ring(client, ["user/1"], caller=caller)
        assert answered is not None
        assert not caller.hung_up
        assert set(fake.channels) == {caller.uuid, answered.uuid}
        await trio.testing.wait_all_tasks_blocked()
        assert our_tasks() <= before  # the watch on the caller ended with the ring


async def test_errors_with_a_caller_are_raised_as_themselves(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/caller", Destination(answer_after=0))
    fake.add_destination("user/1", Destination(answer_after=20))
    async with Inbound(fake.host, fake.port) as client:
        caller = await Channel.create(client, "user/caller")
        # Not an exception group, although the caller is watched in a task group.
        with pytest.raises(ValueError, match="unbalanced"):
            await RingGroup.ring(client, ["user/1"], caller=caller, variables={"x": "a}b"})


# --- sequential ------------------------------------------------------------------------------


async def test_sequential_rings_in_order_sharing_what_is_left_of_the_deadline(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/a", Destination(answer_after=None))
    fake.add_destination("user/b", Destination(reject_cause="USER_BUSY", answer_after=1))
    # 15 s is more than an even third of 30 s: it answers only because b's
    # unused time goes to the legs after it.
    fake.add_destination("user/c", Destination(answer_after=15))
    async with Inbound(fake.host, fake.port) as client:
        started = trio.current_time()
        answered = await RingGroup.ring(
            client, ["user/a", "user/b", "user/c"], RingMode.SEQUENTIAL, timeout=30
        )
        assert answered is not None
        assert answered.dial_path == "user/c"
        assert originated(fake) == ["user/a", "user/b", "user/c"]
        first = fake.channel_history[0].created_us
        # a: 30/3 = 10 s; b: (30-10)/2 = 10 s but busy after 1 s; c: the 19 s left.
        assert [(leg.created_us - first) / 1e6 for leg in fake.channel_history] == pytest.approx(
            [0, 10, 11]
        )
        assert trio.current_time() - started == pytest.approx(26)
        assert causes(fake) == {"user/a": "NO_ANSWER", "user/b": "USER_BUSY", "user/c": None}
        assert set(fake.channels) == {answered.uuid}


async def test_sequential_nobody_answers_within_the_whole_timeout(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=None))
    async with Inbound(fake.host, fake.port) as client:
        started = trio.current_time()
        answered = await RingGroup.ring(client, ["user/1", "user/2"], "sequential", timeout=8)
        assert answered is None
        assert trio.current_time() - started == pytest.approx(8)
        assert causes(fake) == {"user/1": "NO_ANSWER", "user/2": "NO_ANSWER"}
        assert dict(fake.channels) == {}


async def test_sequential_stops_at_the_first_answer(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=1))
    async with Inbound(fake.host, fake.port) as client:
        answered = await RingGroup.ring(
            client, ["user/1", "user/2", "user/3"], RingMode.SEQUENTIAL, timeout=30
        )
        assert answered is not None
        assert answered.dial_path == "user/1"
        assert originated(fake) == ["user/1"]


# --- errors and arguments -------------------------------------------------------------------


async def test_connection_loss_during_the_ring_raises_connection_lost(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=20))

    async def drop_after(seconds: float) -> None:
        await trio.sleep(seconds)  # a point in the scripted (virtual) timeline
        await fake.drop_connections()

    async with Inbound(fake.host, fake.port) as client, trio.open_nursery() as nursery:
        nursery.start_soon(drop_after, 3)
        with pytest.raises(ConnectionLost):
            await RingGroup.ring(client, ["user/1", "user/2"], timeout=30)
        assert trio.current_time() == pytest.approx(3)


@pytest.mark.parametrize(
    ("destinations", "mode", "timeout", "error"),
    [
        ([], RingMode.PARALLEL, 30.0, ValueError),
        ("user/1001", RingMode.PARALLEL, 30.0, TypeError),
        (["user/1001 &echo"], RingMode.PARALLEL, 30.0, ValueError),
        (["user/1001"], RingMode.PARALLEL, 0.0, ValueError),
        (["user/1001"], RingMode.PARALLEL, float("inf"), ValueError),
        (["user/1001"], RingMode.BALANCING, 30.0, ValueError),  # no balancer
        (["user/1001"], "round_robin", 30.0, ValueError),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_sent(
    fake: FakeFreeSWITCH,
    destinations: list[str],
    mode: RingMode | str,
    timeout: float,  # noqa: ASYNC109 - RingGroup's own argument, under test
    error: type[Exception],
) -> None:
    async with Inbound(fake.host, fake.port) as client:
        sent = len(fake.commands_received)
        with pytest.raises(error):
            await RingGroup.ring(client, destinations, mode, timeout=timeout)
        assert len(fake.commands_received) == sent


async def test_bad_variables_raise_one_error_not_a_group(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=1))
    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(ValueError, match="unbalanced"):
            await RingGroup.ring(client, ["user/1", "user/2"], variables={"x": "a}b"})
        assert fake.channel_history == ()


# --- legs still being set up when the race is decided ------------------------------------


async def test_a_leg_not_yet_created_when_another_answers_loses_the_race(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    # user/2 does not exist yet when user/1 answers, so the race cannot hang it up by
    # uuid; Channel.create's own cleanup must use the race's cause.
    fake.add_destination("user/1", Destination(answer_after=1))
    fake.add_destination("user/2", Destination(answer_after=None, setup_after=1.5))
    async with Inbound(fake.host, fake.port) as client:
        answered = await RingGroup.ring(client, ["user/1", "user/2"], timeout=10)
        assert answered is not None
        assert causes(fake) == {"user/1": None, "user/2": "LOSE_RACE"}
        await answered.hangup()


async def test_a_leg_not_yet_created_at_the_deadline_gets_no_answer(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/2", Destination(answer_after=None, setup_after=5.5))
    async with Inbound(fake.host, fake.port) as client:
        assert await RingGroup.ring(client, ["user/2"], timeout=5) is None
    assert causes(fake) == {"user/2": "NO_ANSWER"}


async def test_cancel_cause_of_channel_create_is_checked_before_anything_is_sent(
    fake: FakeFreeSWITCH,
) -> None:
    from genesis_trio import LocalProtocolError

    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(LocalProtocolError):
            await Channel.create(client, "user/1", cancel_cause="NO ANSWER")
    assert not fake.channel_history
