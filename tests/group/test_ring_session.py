"""A ring group run from an outbound session: the session's call is the caller."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import ChannelError, ChannelHangup
from genesis_trio._outbound import Outbound
from genesis_trio._session import Session
from genesis_trio.channel import Channel
from genesis_trio.group import RingGroup
from genesis_trio.testing import Destination, FakeFreeSWITCH
from outbound_serving import serving

pytestmark = pytest.mark.trio


async def test_the_caller_is_bridged_to_the_leg_that_answers(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1", Destination(answer_after=2))
    fake.add_destination("user/2", Destination(answer_after=None))
    outcome: list[Channel | None] = []
    done = trio.Event()

    async def handler(session: Session) -> None:
        try:
            await session.channel.answer()
            agent = await RingGroup.ring(session, ["user/1", "user/2"], timeout=10)
            outcome.append(agent)
            if agent is not None:
                await session.channel.bridge(agent)
        finally:
            done.set()

    # Not myevents: a myevents session only hears its own channel, not the new legs.
    async with serving(Outbound(handler, port=0, myevents=False)) as address:
        call = await fake.call_socket(address)
        await done.wait()
        [agent] = outcome
        assert agent is not None
        assert agent.dial_path == "user/1"
        legs = {leg.dial_path: leg for leg in fake.channel_history}
        assert legs["user/2"].hangup_cause == "LOSE_RACE"
        assert set(fake.channels) == {call.uuid, agent.uuid}


async def test_the_sessions_call_hanging_up_ends_the_ring(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=20))
    raised: list[BaseException] = []
    done = trio.Event()

    async def handler(session: Session) -> None:
        try:
            await session.channel.answer()
            await RingGroup.ring(session, ["user/1", "user/2"], timeout=30)
        except ChannelHangup as gone:
            raised.append(gone)
        finally:
            done.set()

    async with serving(Outbound(handler, port=0, myevents=False)) as address:
        call = await fake.call_socket(address, hangup_after=3)
        await done.wait()
        [gone] = raised
        assert isinstance(gone, ChannelHangup)
        assert gone.uuid == call.uuid
        await trio.testing.wait_all_tasks_blocked()
        legs = [leg for leg in fake.channel_history if leg.dial_path.startswith("user/")]
        assert [leg.hangup_cause for leg in legs] == ["ORIGINATOR_CANCEL", "ORIGINATOR_CANCEL"]


async def test_a_myevents_session_is_refused_with_a_clear_error(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=1))
    raised: list[BaseException] = []
    done = trio.Event()

    async def handler(session: Session) -> None:
        try:
            await RingGroup.ring(session, ["user/1", "user/2"])
        except ChannelError as refused:
            raised.append(refused)
        finally:
            done.set()

    async with serving(Outbound(handler, port=0)) as address:
        await fake.call_socket(address)
        await done.wait()
    [refused] = raised
    assert "myevents" in str(refused)
    assert [
        leg.dial_path for leg in fake.channel_history if leg.dial_path.startswith("user/")
    ] == []
