"""bridge: two legs joined with uuid_bridge, the events on both, and the end of it."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import Channel, ChannelHangup, ChannelState, CommandError, Inbound
from genesis_trio.testing import Destination, FakeFreeSWITCH

from ._calls import outbound_call

pytestmark = pytest.mark.trio


async def two_legs(fake: FakeFreeSWITCH, client: Inbound) -> tuple[Channel, Channel]:
    fake.add_destination("user/*", Destination(answer_after=1))
    return (
        await Channel.create(client, "user/agent"),
        await Channel.create(client, "user/customer"),
    )


async def test_bridge_and_the_end_of_it(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with Inbound(fake.host, fake.port) as client:
        agent, customer = await two_legs(fake, client)
        event = await agent.bridge(customer)
        assert event.name == "CHANNEL_BRIDGE"
        assert (event["Bridge-A-Unique-ID"], event["Bridge-B-Unique-ID"]) == (
            agent.uuid,
            customer.uuid,
        )
        # Both legs know: the A leg from its own event, the B leg from the A leg's.
        assert agent.bridged_to == customer.uuid
        assert customer.bridged_to == agent.uuid
        assert fake.channels[agent.uuid].bridged_to == customer.uuid
        # As on the real switch: the A leg bridges from CS_SOFT_EXECUTE (uuid_bridge's
        # transfer); only the B leg enters CS_EXCHANGE_MEDIA.
        assert agent.state is ChannelState.SOFT_EXECUTE
        assert customer.state is ChannelState.EXCHANGE_MEDIA
        # Both legs left park for the bridge.
        assert not agent.parked
        assert not customer.parked

        # The customer hangs up: the bridge ends and, as recorded, the agent leg follows.
        await fake.hangup(customer.uuid, "NORMAL_CLEARING")
        await agent.wait(ChannelState.HANGUP, timeout=5)
        assert not agent.bridged
        assert not customer.bridged
        assert customer.hangup_cause == "NORMAL_CLEARING"
        unbridge = await agent.wait("CHANNEL_HANGUP_COMPLETE", timeout=5)
        assert unbridge is not None


async def test_bridge_fails_for_a_missing_leg(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with Inbound(fake.host, fake.port) as client:
        agent, customer = await two_legs(fake, client)
        await customer.hangup()
        with pytest.raises(ChannelHangup):
            await agent.bridge(customer)
        with pytest.raises(CommandError, match="Invalid uuid"):
            await agent.bridge("00000000-0000-0000-0000-000000000000")


async def test_session_channel_bridges_to_an_originated_leg(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/expert", Destination(answer_after=2, hangup_after=30))
    async with outbound_call(fake) as call, Inbound(fake.host, fake.port) as client:
        await call.channel.answer()
        expert = await Channel.create(client, "user/expert")
        await call.channel.bridge(expert.uuid)
        assert call.channel.bridged_to == expert.uuid
        assert expert.bridged_to == call.channel.uuid
        started = trio.current_time()
        # The expert hangs up after 30 s; the caller's leg follows.
        await call.channel.wait(ChannelState.HANGUP)
        assert trio.current_time() - started == pytest.approx(30, abs=3)
        assert not call.channel.bridged


async def test_park_parks_once(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with Inbound(fake.host, fake.port) as client:
        agent, customer = await two_legs(fake, client)
        parked = await agent.park()  # already parked by &park(): nothing to do
        assert parked.name == "CHANNEL_PARK"
        assert not any(line.startswith("api uuid_park") for line in fake.commands_received)
        await agent.bridge(customer)
        assert not agent.parked
        # Parking a bridged leg ends its bridge; the other leg hangs up.
        event = await agent.park()
        assert event.name == "CHANNEL_PARK"
        assert agent.parked
        assert not agent.bridged
        await customer.wait(ChannelState.HANGUP, timeout=5)
