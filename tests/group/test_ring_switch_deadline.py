"""Every ring leg tells the switch the ring's deadline (``originate_timeout``), rounded up."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import Inbound
from genesis_trio.group import RingGroup, RingMode
from genesis_trio.testing import Destination, FakeFreeSWITCH

pytestmark = pytest.mark.trio


async def test_parallel_legs_carry_the_rings_remaining_time(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=None))
    async with Inbound(fake.host, fake.port) as client:
        assert await RingGroup.ring(client, ["user/1", "user/2"], timeout=7.2) is None
    legs = fake.channel_history
    assert [leg.variables["originate_timeout"] for leg in legs] == ["8", "8"]


async def test_sequential_legs_carry_their_share_and_a_shorter_given_timeout_stays(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=None))
    async with Inbound(fake.host, fake.port) as client:
        assert (
            await RingGroup.ring(client, ["user/1", "user/2"], RingMode.SEQUENTIAL, timeout=20)
            is None
        )
        assert (
            await RingGroup.ring(client, ["user/3"], timeout=20, variables={"originate_timeout": 5})
            is None
        )
    timeouts = [leg.variables["originate_timeout"] for leg in fake.channel_history]
    assert timeouts == ["10", "10", "5"]
