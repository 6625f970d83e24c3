"""Channel operations on the real switch, checked against what FreeSWITCH reports.

The channel under test is the ``-a`` leg of a loopback call (``Channel.create`` parks it);
its ``-b`` leg runs the extension, and is the far end: DTMF sent to it with
``uuid_send_dtmf`` arrives on the ``-a`` leg, media it plays is what the ``-a`` leg hears.
"""

from __future__ import annotations

import json
import re

import pytest
import trio

from genesis_trio import (
    Channel,
    ChannelHangup,
    ChannelState,
    LogData,
    OperationTimeout,
    Subscription,
)
from real_switch import RealSwitch, channel_exists, other_leg, placed_call, watch_calls

pytestmark = pytest.mark.trio

DEADLINE = 30
# 2 x 200 ms of tone; the loopback legs run L16 at 8 kHz.
TONE = "tone_stream://%(200,0,440);loops=2"
TONE_MS = 400


async def test_playback_plays_the_whole_tone(freeswitch: RealSwitch) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9002", watch) as channel:
                completion = await channel.playback(TONE)
                assert completion.get("Application-Response") == "FILE PLAYED"
                assert completion.get("Application-Data") == TONE
                assert completion.get("variable_playback_ms") == str(TONE_MS)
                # The switch announced the media on that leg, in this order.
                await watch.wait_event("PLAYBACK_STOP", channel.uuid)
                names = [
                    n for n in watch.names(channel.uuid) if n in ("PLAYBACK_START", "PLAYBACK_STOP")
                ]
                assert names == ["PLAYBACK_START", "PLAYBACK_STOP"]
            await watch.assert_all_gone(2)


async def test_say_runs_mod_say_en(freeswitch: RealSwitch) -> None:
    """``say en number pronounced 123``: the bundle has no sound files, so the switch logs
    each file mod_say_en chose (1, hundred, 20, 3) as missing; the execute still completes."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9002", watch) as channel:
                async with watch.client.subscribe_logs(3) as logs:
                    completion = await channel.say("123")
                    assert completion.get("Application") == "say"
                    assert completion.get("Application-Data") == "en NUMBER pronounced 123"
                    if freeswitch.instance_dir is not None:
                        # Our bundle, known to have no sound files: each word is a missing file.
                        assert await _missing_sound_files(logs, 4) == [
                            "digits/1.wav",
                            "digits/hundred.wav",
                            "digits/20.wav",
                            "digits/3.wav",
                        ]
                executes = await watch.wait_for(
                    lambda e: e.unique_id == channel.uuid and e.application == "say", count=2
                )
                assert [e.name for e in executes] == ["CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"]


async def _missing_sound_files(logs: Subscription[LogData], count: int) -> list[str]:
    """The first ``count`` sound files the switch logged it could not open, in order.

    mod_dptools logs them without the channel's uuid (User-Data is empty).
    """
    found: list[str] = []
    async for line in logs:
        match = re.search(r"Can't open file .*/(digits/[^/\s]+)", line.body)
        if match:
            found.append(match.group(1))
            if len(found) == count:
                break
    return found


async def test_play_and_get_digits_collects_dtmf_sent_by_uuid_send_dtmf(
    freeswitch: RealSwitch,
) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9007", watch) as channel:
                far_end = await Channel.from_uuid(client, await other_leg(client, channel.uuid))
                digits: list[str] = []
                async with trio.open_nursery() as nursery:

                    async def collect() -> None:
                        digits.append(
                            await channel.play_and_get_digits(
                                "silence_stream://20000",
                                max_digits=4,
                                tries=1,
                                input_timeout=20,
                                digit_timeout=20,
                            )
                        )

                    nursery.start_soon(collect)
                    # Pressed while the prompt plays: the far end sends them to our leg.
                    await watch.wait_event("PLAYBACK_START", channel.uuid)
                    await far_end.send_dtmf("12#")
                assert digits == ["12"]
                assert await channel.get_variable("pagd_digits") == "12"
                dtmf = await watch.wait_for(
                    lambda e: e.name == "DTMF" and e.unique_id == channel.uuid, count=3
                )
                assert [e.get("DTMF-Digit") for e in dtmf] == ["1", "2", "#"]
                # uuid_send_dtmf sends towards the far end: the sending leg gets no DTMF event.
                assert "DTMF" not in watch.names(far_end.uuid)


async def test_record_writes_the_file_on_the_switch(freeswitch: RealSwitch) -> None:
    if freeswitch.instance_dir is None:
        pytest.skip("the recording lands on the user's switch, out of our reach")
    path = freeswitch.instance_dir / "recordings" / "placeholder.wav"
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        path = freeswitch.instance_dir / f"{watch.tag}.wav"
        with trio.fail_after(DEADLINE):
            # 9001 plays tones to us after answering: there is something to record.
            async with placed_call(client, "9001", watch) as channel:
                completion = await channel.record(str(path), time_limit=1)
                assert completion.get("Application") == "record"
                assert int(completion.get("variable_record_samples", "0")) > 0
                await watch.wait_event("RECORD_STOP", channel.uuid)
                assert "RECORD_START" in watch.names(channel.uuid)
    try:
        # A WAV header is 44 bytes: more means audio was written.
        assert path.is_file()
        assert path.stat().st_size > 44
    finally:
        path.unlink(missing_ok=True)


async def test_park_moves_a_running_channel_into_park(freeswitch: RealSwitch) -> None:
    """The -b leg of 9006 runs ``echo``; park() stops it and parks the leg."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9006", watch) as channel:
                echo_leg = await other_leg(client, channel.uuid)
                await watch.wait_for(
                    lambda e: (
                        e.unique_id == echo_leg
                        and e.name == "CHANNEL_EXECUTE"
                        and e.application == "echo"
                    )
                )
                echoing = await Channel.from_uuid(client, echo_leg)
                assert not echoing.parked
                park = await echoing.park()
                assert park.name == "CHANNEL_PARK"
                assert echoing.parked
                await watch.wait_event("CHANNEL_PARK", echo_leg)
                ended = await watch.wait_for(
                    lambda e: (
                        e.unique_id == echo_leg
                        and e.name == "CHANNEL_EXECUTE_COMPLETE"
                        and e.application == "echo"
                    )
                )
                assert ended
                dump = json.loads(await client.api(f"uuid_dump {echo_leg} json"))
                assert dump["Channel-State"] == "CS_PARK"
                # Parking twice returns the same park at once.
                assert (await echoing.park()) is park
            await watch.assert_all_gone(2)


async def test_bridge_of_two_legs(freeswitch: RealSwitch) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with (
                placed_call(client, "9002", watch) as first,
                placed_call(client, "9002", watch) as second,
            ):
                bridge = await first.bridge(second)
                assert {bridge.get("Bridge-A-Unique-ID"), bridge.get("Bridge-B-Unique-ID")} == {
                    first.uuid,
                    second.uuid,
                }
                assert first.bridged_to == second.uuid
                await watch.wait_event("CHANNEL_BRIDGE", first.uuid)
                # What the switch says: each leg is bridged to the other.
                assert await first.get_variable("bridge_uuid") == second.uuid
                assert await second.get_variable("bridge_uuid") == first.uuid
                assert await client.api(f"uuid_getvar {first.uuid} signal_bond") == second.uuid
                await first.hangup()
                # The bridge ends with its first leg, and the switch hangs up the other one.
                await watch.wait_event("CHANNEL_UNBRIDGE", first.uuid)
                await second.wait(ChannelState.HANGUP)
                assert second.hangup_cause == "NORMAL_CLEARING"
            await watch.assert_all_gone(4)


@pytest.mark.parametrize(
    ("cause", "q850"), [("NORMAL_CLEARING", 16), ("USER_BUSY", 17), ("CALL_REJECTED", 21)]
)
async def test_hangup_with_a_cause(freeswitch: RealSwitch, cause: str, q850: int) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9002", watch) as channel:
                b_leg = await other_leg(client, channel.uuid)
                event = await channel.hangup(cause)
                assert event is not None
                assert event.hangup_cause == cause
                assert channel.hung_up
                assert channel.hangup_cause == cause
                # Only CHANNEL_HANGUP_COMPLETE carries the Q.850 code (hangup_cause_q850).
                await channel.wait("CHANNEL_HANGUP_COMPLETE")
                assert channel.hangup_cause_q850 == q850
                assert not await channel_exists(client, channel.uuid)
                seen = await watch.wait_event("CHANNEL_HANGUP", channel.uuid)
                assert seen.hangup_cause == cause
                assert seen.get("Hangup-Cause") == cause
                complete = await watch.wait_event("CHANNEL_HANGUP_COMPLETE", channel.uuid)
                assert complete.get("variable_hangup_cause_q850") == str(q850)
                # The loopback's other leg ends with it.
                await watch.wait_event("CHANNEL_HANGUP", b_leg)
            await watch.assert_all_gone(2)


async def test_the_far_end_hanging_up_ends_waits(freeswitch: RealSwitch) -> None:
    """9010 answers, beeps and hangs up by itself: a wait for DTMF raises ChannelHangup,
    a wait for the hangup returns it."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            channel = await Channel.create(client, "loopback/9010/default", watch.variables)
            with pytest.raises(ChannelHangup) as raised:
                await channel.wait("DTMF")
            assert raised.value.uuid == channel.uuid
            assert raised.value.cause == "NORMAL_CLEARING"
            assert await channel.wait(ChannelState.HANGUP) is None  # already there
            assert channel.hangup_cause == "NORMAL_CLEARING"
            await watch.assert_all_gone(2)
            hangup = await watch.wait_event("CHANNEL_HANGUP", channel.uuid)
            assert hangup.hangup_cause == "NORMAL_CLEARING"


async def test_wait_for_events_states_and_timeouts(freeswitch: RealSwitch) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9003", watch) as channel:
                # Waits for what already happened return the switch's own event at once.
                create = await channel.wait("CHANNEL_CREATE")
                assert create is not None
                assert create.unique_id == channel.uuid
                answer = await channel.wait("CHANNEL_ANSWER")
                assert answer is not None
                assert answer.get("Event-Sequence") == (
                    await watch.wait_event("CHANNEL_ANSWER", channel.uuid)
                ).get("Event-Sequence")
                with pytest.raises(OperationTimeout):
                    await channel.wait("DTMF", timeout=0.5)
                assert not channel.hung_up

                async def hang_up_soon() -> None:
                    await client.api(f"uuid_kill {channel.uuid} NORMAL_CLEARING")

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(hang_up_soon)
                    await channel.wait(ChannelState.HANGUP)
                assert channel.hangup_cause == "NORMAL_CLEARING"


async def test_set_and_get_variable(freeswitch: RealSwitch) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9002", watch) as channel:
                await channel.set_variable("genesis_greeting", "hello world")
                # What the switch holds, asked on another connection.
                getvar = f"uuid_getvar {channel.uuid} genesis_greeting"
                assert await watch.client.api(getvar) == "hello world"
                assert await channel.get_variable("genesis_greeting") == "hello world"
                dump = json.loads(await client.api(f"uuid_dump {channel.uuid} json"))
                assert dump["variable_genesis_greeting"] == "hello world"
                await channel.set_variable("genesis_greeting", None)
                assert await watch.client.api(getvar) == "_undef_"
                assert await channel.get_variable("genesis_greeting") is None
                assert await channel.get_variable("genesis_never_set") is None


async def test_a_far_end_hangup_reports_the_cause_the_switch_gave_our_leg(
    freeswitch: RealSwitch,
) -> None:
    """The -b leg is killed with CALL_REJECTED. mod_loopback then ends the answered -a leg
    with CALL_REJECTED or NORMAL_CLEARING, depending on which of its threads gets there
    first; either way our channel reports what the switch reported."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9002", watch) as channel:
                far_end = await other_leg(client, channel.uuid)
                await client.api(f"uuid_kill {far_end} CALL_REJECTED")
                await channel.wait(ChannelState.HANGUP)
                seen = await watch.wait_event("CHANNEL_HANGUP", channel.uuid)
                assert channel.hangup_cause == seen.hangup_cause
                assert seen.hangup_cause in ("CALL_REJECTED", "NORMAL_CLEARING")
                far_end_hangup = await watch.wait_event("CHANNEL_HANGUP", far_end)
                assert far_end_hangup.hangup_cause == "CALL_REJECTED"
            await watch.assert_all_gone(2)


async def test_dtmf_handlers_see_the_digits_the_far_end_sends(freeswitch: RealSwitch) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9007", watch) as channel:
                pressed: list[str] = []
                all_three = trio.Event()

                @channel.on_dtmf()
                async def on_digit(digit: str) -> None:
                    pressed.append(digit)
                    if len(pressed) == 3:
                        all_three.set()

                far_end = await Channel.from_uuid(client, await other_leg(client, channel.uuid))
                await far_end.send_dtmf("5*9")
                await all_three.wait()
                # Each press runs in a task of its own (docs/channel.md): presses read in
                # one go may be handled in either order. The events keep the far end's.
                assert sorted(pressed) == sorted(["5", "*", "9"])
                events = await watch.wait_for(
                    lambda e: e.name == "DTMF" and e.unique_id == channel.uuid, count=3
                )
                assert [e.get("DTMF-Digit") for e in events] == ["5", "*", "9"]
