"""Channel.create over an Inbound connection to the fake switch."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import Channel, ChannelState, Inbound, OriginateError
from genesis_trio.testing import Destination, FakeFreeSWITCH

pytestmark = pytest.mark.trio


async def test_answered_call_is_followed_from_its_first_event(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=2))
    async with Inbound(fake.host, fake.port) as client:
        started = trio.current_time()
        channel = await Channel.create(client, "user/1000", {"origination_caller_id_number": "42"})
        assert trio.current_time() - started == pytest.approx(2)
        assert channel.answered
        assert not channel.hung_up
        assert channel.state is ChannelState.EXECUTE
        # The first event of the leg was seen, so waiting for it returns it at once.
        created = await channel.wait("CHANNEL_CREATE", timeout=0)
        assert created is not None
        assert created.unique_id == channel.uuid
        live = fake.channels[channel.uuid]
        assert live.variables["origination_caller_id_number"] == "42"
        assert any(
            line.startswith("bgapi originate {") and f"origination_uuid={channel.uuid}" in line
            for line in fake.commands_received
        )


@pytest.mark.parametrize(
    ("destination", "cause"),
    [
        (Destination(reject_cause="USER_BUSY"), "USER_BUSY"),
        (Destination(answer_after=None), "NO_ANSWER"),
        (Destination(reject_cause="CALL_REJECTED", answer_after=1), "CALL_REJECTED"),
    ],
)
async def test_failed_originate_raises_with_its_cause(
    fake: FakeFreeSWITCH,
    autojump_clock: trio.testing.MockClock,
    destination: Destination,
    cause: str,
) -> None:
    fake.add_destination("user/1001", destination)
    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(OriginateError) as caught:
            await Channel.create(client, "user/1001", {"originate_timeout": "30"})
        assert caught.value.cause == cause


async def test_unroutable_destination(fake: FakeFreeSWITCH) -> None:
    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(OriginateError) as caught:
            await Channel.create(client, "user/nobody")
        assert caught.value.cause == "NO_ROUTE_DESTINATION"


async def test_own_timeout_hangs_the_leg_up(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1002", Destination(answer_after=60))
    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(TimeoutError):
            await Channel.create(client, "user/1002", timeout=5)
        leg = fake.channel_history[-1]
        await leg.wait_ended()
        assert leg.hangup_cause == "ORIGINATOR_CANCEL"
        assert any(line.startswith(f"api uuid_kill {leg.uuid}") for line in fake.commands_received)


async def test_caller_cancellation_hangs_the_leg_up_and_propagates(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1003", Destination(answer_after=60))
    async with Inbound(fake.host, fake.port) as client:
        with trio.move_on_after(3) as scope:
            await Channel.create(client, "user/1003", timeout=10)
        assert scope.cancelled_caught
        leg = fake.channel_history[-1]
        await leg.wait_ended()
        assert leg.hangup_cause == "ORIGINATOR_CANCEL"


async def test_cleanup_timeout_bounds_the_wait_for_a_leg_not_yet_created(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    # The leg exists only 4 s after the originate: a create abandoned at 1 s waits
    # for it (up to its cleanup_timeout, 10 s here) and hangs it up. It used the
    # 2 s default whatever create was given, and left this leg ringing.
    fake.add_destination("user/1004", Destination(answer_after=None, setup_after=4))
    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(TimeoutError):
            await Channel.create(client, "user/1004", timeout=1, cleanup_timeout=10)
        (leg,) = fake.channel_history
        with trio.fail_after(30):
            await leg.wait_ended()
        assert leg.hangup_cause == "ORIGINATOR_CANCEL"


async def test_bad_variables_are_refused_before_anything_is_sent(fake: FakeFreeSWITCH) -> None:
    async with Inbound(fake.host, fake.port) as client:
        sent = len(fake.commands_received)
        with pytest.raises(ValueError, match="unbalanced"):
            await Channel.create(client, "user/1000", {"x": "a}b"})
        with pytest.raises(ValueError, match="one leg"):
            await Channel.create(client, "user/1000 &echo")
        assert len(fake.commands_received) == sent
