"""Cancellation on the real switch: what a cancelled operation leaves behind.

A cancelled playback must really stop on the switch (its CHANNEL_EXECUTE_COMPLETE comes
long before the tone would have ended), and must not cut the next playback on that
channel, wherever the cancellation landed. A cancelled ring group leaves no leg.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from genesis_trio import Channel, Event, RingGroup, RingMode
from real_switch import CallWatch, RealSwitch, placed_call, watch_calls

pytestmark = pytest.mark.trio

DEADLINE = 30
LONG_TONE = "tone_stream://%(60000,0,440)"
SHORT_TONE = "tone_stream://%(100,0,440)"
TONE = "tone_stream://%(200,0,440);loops=2"
TONE_MS = "400"


def _playback_event(name: str, channel: Channel, data: str) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        if event.unique_id != channel.uuid or event.name != name:
            return False
        if name.startswith("PLAYBACK_"):
            return event.get("Playback-File-Path") == data
        return event.application == "playback" and event.get("Application-Data") == data

    return matches


async def _plays_in_full(channel: Channel) -> None:
    completion = await channel.playback(TONE)
    assert completion.get("Application-Response") == "FILE PLAYED"
    assert completion.get("variable_playback_ms") == TONE_MS


async def _cancel_playback_at(watch: CallWatch, channel: Channel, tone: str, point: str) -> None:
    """Run a blocking playback of ``tone`` and cancel it once the switch sent ``point``."""
    async with trio.open_nursery() as nursery:

        async def play() -> None:
            await channel.playback(tone)
            # Only a short tone may finish before the cancellation reached it.
            assert tone == SHORT_TONE

        async def cancel() -> None:
            await watch.wait_for(_playback_event(point, channel, tone))
            nursery.cancel_scope.cancel()

        nursery.start_soon(play)
        nursery.start_soon(cancel)


@pytest.mark.parametrize("point", ["CHANNEL_EXECUTE", "PLAYBACK_START"])
async def test_a_cancelled_playback_stops_on_the_switch(freeswitch: RealSwitch, point: str) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9002", watch) as channel:
                await _cancel_playback_at(watch, channel, LONG_TONE, point)
                # The switch ended the 60 s tone (well within DEADLINE): it was stopped.
                done = await watch.wait_for(
                    _playback_event("CHANNEL_EXECUTE_COMPLETE", channel, LONG_TONE)
                )
                assert int(done[0].get("variable_playback_ms", "60000")) < 60000
                await _plays_in_full(channel)
                assert not channel.hung_up


async def test_a_playback_cancelled_as_it_ends_does_not_cut_the_next(
    freeswitch: RealSwitch,
) -> None:
    """Cancelled when the switch already finished the tone (PLAYBACK_STOP): our uuid_break
    comes late, with nothing playing. FreeSWITCH clears the break flag whenever it starts an
    application, so the next playback still plays in full (issue 10 item 15)."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9002", watch) as channel:
                for _ in range(3):
                    await _cancel_playback_at(watch, channel, SHORT_TONE, "PLAYBACK_STOP")
                    await _plays_in_full(channel)


async def test_a_break_with_nothing_playing_does_not_cut_the_next_playback(
    freeswitch: RealSwitch,
) -> None:
    """The switch's own rule the library relies on (the fake keeps the flag instead)."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9002", watch) as channel:
                assert await client.api(f"uuid_break {channel.uuid}") == "+OK\n"
                await _plays_in_full(channel)


@pytest.mark.parametrize("mode", [RingMode.PARALLEL, RingMode.SEQUENTIAL])
async def test_a_cancelled_ring_group_leaves_no_leg(freeswitch: RealSwitch, mode: RingMode) -> None:
    """Cancelled while its legs ring (9004 never answers): every leg is gone."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        ringing = 3 if mode is RingMode.PARALLEL else 1
        with trio.fail_after(DEADLINE):
            answered: list[Channel | None] = []
            async with trio.open_nursery() as nursery:

                async def ring() -> None:
                    answered.append(
                        await RingGroup.ring(
                            client,
                            ["loopback/9004/default"] * 3,
                            mode,
                            timeout=DEADLINE,
                            variables=watch.variables,
                        )
                    )

                async def cancel_when_ringing() -> None:
                    await watch.wait_for(
                        lambda e: (
                            e.name == "CHANNEL_PROGRESS"
                            and e.get("Channel-Name") == "loopback/9004-a"
                        ),
                        count=ringing,
                    )
                    nursery.cancel_scope.cancel()

                nursery.start_soon(ring)
                nursery.start_soon(cancel_when_ringing)
            assert not answered
            await watch.assert_all_gone(2 * ringing)
            a_legs = watch.named("loopback/9004-a")
            assert len(a_legs) == ringing
            for leg in a_legs:
                hangup = await watch.wait_event("CHANNEL_HANGUP", leg)
                assert hangup.hangup_cause == "ORIGINATOR_CANCEL"
            assert not watch.find(lambda e: e.name == "CHANNEL_ANSWER")
