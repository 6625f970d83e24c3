"""A channel stops following its uuid the moment its CHANNEL_DESTROY is routed."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import Channel, ChannelState, Event, Inbound
from genesis_trio.testing import Destination, FakeFreeSWITCH

pytestmark = pytest.mark.trio


async def test_a_route_closed_from_its_own_matches_leaves_the_next_one_its_event(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    """The reader iterates a uuid's route list while a route in it unregisters itself.

    A channel's tap does exactly that on CHANNEL_DESTROY; the routes after it in the
    same list (a hangup waiter, the user's own subscription) must still get the event.
    """
    fake.add_destination("user/1000", Destination(answer_after=1))
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, "user/1000")
        connection = client.connection
        closed_on: list[str] = []

        def close_self(event: Event) -> bool:
            closed_on.append(event.name or "")
            first.close()
            return False

        first = connection.subscribe(uuid=channel.uuid, matches=close_self)
        second = connection.subscribe(uuid=channel.uuid)
        try:
            await channel.hangup()
            with trio.fail_after(5):
                seen = await second.receive()
            assert closed_on == [seen.name]
        finally:
            second.close()


async def test_destroy_releases_the_channel_and_later_routes_still_see_it(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=1))
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, "user/1000")
        # Registered after the channel's own tap: later in the uuid's route list.
        later = client.connection.subscribe(uuid=channel.uuid)
        try:
            await channel.hangup()
            with trio.fail_after(5):
                while (event := await later.receive()).name != "CHANNEL_DESTROY":
                    pass
            assert event.unique_id == channel.uuid
            assert channel.state is ChannelState.DESTROY
            assert channel.hung_up
        finally:
            later.close()
