"""Channel.create on the real switch: answer, early media, busy, no route, timeouts, cancellation.

Each test checks what FreeSWITCH did (its events, ``uuid_exists``, ``show channels``,
``uuid_getvar``), seen on a connection of its own (:class:`CallWatch`), not only what the
client under test believes. A loopback call is two channels: the ``-a`` leg we originate
and the ``-b`` leg that runs the extension; both must be gone when a test ends.
"""

from __future__ import annotations

import json

import pytest
import trio

from genesis_trio import Channel, ChannelState, OriginateError
from real_switch import (
    TAG_VARIABLE,
    RealSwitch,
    channel_exists,
    live_channel_uuids,
    other_leg,
    wait_until,
    watch_calls,
)

pytestmark = pytest.mark.trio

# Generous: the switch is shared with other tests on a loaded machine.
DEADLINE = 30


async def test_an_answered_call_is_live_on_the_switch(freeswitch: RealSwitch) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            channel = await Channel.create(client, "loopback/9002/default", watch.variables)
            try:
                assert channel.answered
                assert channel.state is ChannelState.PARK or not channel.hung_up
                await watch.wait_event("CHANNEL_ANSWER", channel.uuid)
                b_leg = await other_leg(client, channel.uuid)
                await watch.wait_event("CHANNEL_ANSWER", b_leg)
                assert await channel_exists(client, channel.uuid)
                assert await channel_exists(client, b_leg)
                # The switch holds the variables we originated with, on both legs.
                getvar = f"uuid_getvar {channel.uuid} {TAG_VARIABLE}"
                assert await client.api(getvar) == watch.tag
                dump = json.loads(await client.api(f"uuid_dump {channel.uuid} json"))
                assert dump["Answer-State"] == "answered"
                assert dump["Channel-Name"] == "loopback/9002-a"

                async def listed() -> bool:
                    return {channel.uuid, b_leg} <= await live_channel_uuids(client)

                await wait_until(listed, within=DEADLINE)
            finally:
                await channel.hangup()
            assert channel.hung_up
            assert channel.hangup_cause == "NORMAL_CLEARING"
            await watch.assert_all_gone(2)
            assert set(watch.uuids) == {channel.uuid, b_leg}


async def test_early_media_returns_the_channel_before_the_answer(freeswitch: RealSwitch) -> None:
    """9003 rings, sends early media, then answers: originate succeeds at the early media."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            channel = await Channel.create(client, "loopback/9003/default", watch.variables)
            try:
                progress_media = await channel.wait("CHANNEL_PROGRESS_MEDIA")
                assert progress_media is not None
                answer = await channel.wait("CHANNEL_ANSWER")
                assert answer is not None
                assert channel.answered
                # The order FreeSWITCH sent: ringing, early media, then the answer.
                await watch.wait_event("CHANNEL_ANSWER", channel.uuid)
                names = watch.names(channel.uuid)
                assert names.index("CHANNEL_PROGRESS") < names.index("CHANNEL_PROGRESS_MEDIA")
                assert names.index("CHANNEL_PROGRESS_MEDIA") < names.index("CHANNEL_ANSWER")
                b_leg = await other_leg(client, channel.uuid)
                await watch.wait_event("CHANNEL_ANSWER", b_leg)
                await watch.wait_for(
                    lambda e: (
                        e.unique_id == b_leg
                        and e.name == "CHANNEL_EXECUTE_COMPLETE"
                        and e.application == "playback"
                    )
                )
                # The extension played its early-media tone on the -b leg before answering.
                b_events = watch.events(b_leg)
                tones = [
                    i
                    for i, e in enumerate(b_events)
                    if e.name == "CHANNEL_EXECUTE_COMPLETE" and e.application == "playback"
                ]
                answered = [i for i, e in enumerate(b_events) if e.name == "CHANNEL_ANSWER"]
                assert tones
                assert answered
                assert tones[0] < answered[0]
                assert tones
                assert b_events[tones[0]].get("Application-Response") == "FILE PLAYED"
            finally:
                await channel.hangup()
            await watch.assert_all_gone(2)


async def test_a_busy_callee_raises_originate_error_user_busy(freeswitch: RealSwitch) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            with pytest.raises(OriginateError) as raised:
                await Channel.create(client, "loopback/9005/default", watch.variables)
            assert raised.value.cause == "USER_BUSY"
            await watch.assert_all_gone(2)
            hangups = watch.find(lambda event: event.name == "CHANNEL_HANGUP")
            assert {event.hangup_cause for event in hangups} == {"USER_BUSY"}


async def test_no_route_raises_originate_error(freeswitch: RealSwitch) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            with pytest.raises(OriginateError) as raised:
                await Channel.create(client, "loopback/8999/default", watch.variables)
            assert raised.value.cause == "NO_ROUTE_DESTINATION"
            await watch.assert_all_gone(2)
            b_legs = watch.named("loopback/8999-b")
            assert b_legs
            b_hangup = await watch.wait_event("CHANNEL_HANGUP", b_legs[0])
            assert b_hangup.hangup_cause == "NO_ROUTE_DESTINATION"


async def test_originate_timeout_on_a_leg_that_never_answers(freeswitch: RealSwitch) -> None:
    """FreeSWITCH's own ``originate_timeout`` ends the ring: NO_ANSWER, nothing left ringing."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            variables = {**watch.variables, "originate_timeout": "1"}
            with pytest.raises(OriginateError) as raised:
                await Channel.create(client, "loopback/9004/default", variables)
            assert raised.value.cause == "NO_ANSWER"
            # It did ring first.
            await watch.wait_for(lambda event: event.name == "CHANNEL_PROGRESS")
            await watch.assert_all_gone(2)
            assert not watch.find(lambda event: event.name == "CHANNEL_ANSWER")


async def test_create_timeout_hangs_up_the_ringing_leg(freeswitch: RealSwitch) -> None:
    """Our own ``timeout=`` runs out while 9004 rings: TimeoutError, and the leg is gone."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            with pytest.raises(TimeoutError):
                await Channel.create(client, "loopback/9004/default", watch.variables, timeout=1.5)
            await watch.assert_all_gone(2)
            a_legs = watch.named("loopback/9004-a")
            assert len(a_legs) == 1
            hangup = await watch.wait_event("CHANNEL_HANGUP", a_legs[0])
            assert hangup.hangup_cause == "ORIGINATOR_CANCEL"
            assert not watch.find(lambda event: event.name == "CHANNEL_ANSWER")


@pytest.mark.parametrize("cancel_at", ["CHANNEL_CREATE", "CHANNEL_PROGRESS"])
async def test_cancelled_create_leaves_nothing_on_the_switch(
    freeswitch: RealSwitch, cancel_at: str
) -> None:
    """Cancelled once the leg exists (job still running) or once it rings: no leg is left."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            created: list[Channel] = []
            async with trio.open_nursery() as nursery:

                async def create() -> None:
                    created.append(
                        await Channel.create(client, "loopback/9004/default", watch.variables)
                    )

                async def cancel_when_seen() -> None:
                    await watch.wait_for(lambda event: event.name == cancel_at)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(create)
                nursery.start_soon(cancel_when_seen)
            assert nursery.cancel_scope.cancelled_caught
            assert not created
            await watch.assert_all_gone(2)
            a_legs = watch.named("loopback/9004-a")
            assert len(a_legs) == 1
            hangup = await watch.wait_event("CHANNEL_HANGUP", a_legs[0])
            assert hangup.hangup_cause == "ORIGINATOR_CANCEL"
