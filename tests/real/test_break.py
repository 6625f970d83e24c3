"""A cancelled playback never affects the next one, on the real switch (issue 10, item 15).

What the switch does with ``uuid_break``: it sets the channel's break flag, which stops the
media application running when the flag is read, and ``switch_core_session_exec`` clears the
flag as each application starts. So a break that finds nothing running is lost, and the only
way to cut another prompt is to break while it runs. These tests read each prompt's
``CHANNEL_EXECUTE_COMPLETE``: ``FILE PLAYED`` with ``variable_playback_ms`` equal to the tone's
length is a prompt that played in full.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from genesis_trio import Channel, Event, Inbound
from real_switch import RealSwitch

pytestmark = pytest.mark.trio

DEADLINE = 30  # generous: the switch is shared and the machine is loaded


def tone(milliseconds: int) -> str:
    return f"tone_stream://%({milliseconds},0,440)"


def played_in_full(completion: Event, milliseconds: int) -> bool:
    return completion["Application-Response"] == "FILE PLAYED" and completion.get(
        "variable_playback_ms"
    ) == str(milliseconds)


@asynccontextmanager
async def answered_call(client: Inbound) -> AsyncIterator[Channel]:
    """A loopback call (extension 9002: answer, park) controlled over ``client``."""
    channel = await Channel.create(client, "loopback/9002/default")
    try:
        yield channel
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            await channel.hangup()


async def test_the_prompt_after_a_cancelled_one_plays_in_full(freeswitch: RealSwitch) -> None:
    async with freeswitch.inbound() as client, answered_call(client) as channel:
        with trio.fail_after(DEADLINE):
            with trio.move_on_after(0.5) as cancelled:
                await channel.playback(tone(5000))
            assert cancelled.cancelled_caught
            completion = await channel.playback(tone(1000))
    assert played_in_full(completion, 1000), dict(completion)


async def test_a_break_that_finds_nothing_running_is_lost(freeswitch: RealSwitch) -> None:
    """The flag does not wait for the next prompt: the fake models this the same way."""
    async with freeswitch.inbound() as client, answered_call(client) as channel:
        with trio.fail_after(DEADLINE):
            await client.api(f"uuid_break {channel.uuid}")
            await client.api(f"uuid_break {channel.uuid}")
            completion = await channel.playback(tone(1000))
    assert played_in_full(completion, 1000), dict(completion)


async def test_a_cancel_landing_after_the_completion(freeswitch: RealSwitch) -> None:
    """Cancelled the moment the switch's completion arrives: nothing of it reaches the next."""
    async with freeswitch.inbound() as client, answered_call(client) as channel:
        with trio.fail_after(DEADLINE):
            with trio.CancelScope() as scope:

                def cancel_on_completion(event: Event) -> bool:
                    # The reader calls this before the channel's own subscription gets it.
                    if event.get("Application-Data") == tone(300):
                        scope.cancel()
                    return False

                tap = client.connection.subscribe(
                    ("CHANNEL_EXECUTE_COMPLETE",), matches=cancel_on_completion
                )
                try:
                    await channel.playback(tone(300))
                finally:
                    tap.close()
            assert scope.cancelled_caught
            completion = await channel.playback(tone(1000))
    assert played_in_full(completion, 1000), dict(completion)


async def test_a_prompt_sent_during_another_runs_inside_it(freeswitch: RealSwitch) -> None:
    """Not a queue: FreeSWITCH's media loops run the messages sent meanwhile, so a prompt sent
    while another plays starts at once, inside it. Cancelling it breaks the broadcast it runs in
    (both end, as ``uuid_break`` does on the real switch); the prompt sent after the
    cancellation still plays in full."""
    async with (
        freeswitch.inbound() as client,
        answered_call(client) as channel,
        client.subscribe(uuid=channel.uuid) as events,
    ):
        with trio.fail_after(DEADLINE):
            before = await channel.playback(tone(3000), block=False)
            with trio.move_on_after(0.5) as cancelled:
                await channel.playback(tone(20000))
            assert cancelled.cancelled_caught
            following = await channel.playback(tone(1000))
        seen = [events.receive_nowait() for _ in range(events.buffered)]
    executes = [
        (event.name, event["Application-Data"])
        for event in seen
        if event is not None
        and event.name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE")
        and event.get("Application") == "playback"
    ]
    assert executes[:2] == [
        ("CHANNEL_EXECUTE", tone(3000)),
        ("CHANNEL_EXECUTE", tone(20000)),  # started inside the first one
    ]
    ours = next(
        event
        for event in seen
        if event is not None
        and event.name == "CHANNEL_EXECUTE_COMPLETE"
        and event.get("Application-Data") == tone(20000)
    )
    assert before
    assert int(ours["variable_playback_ms"]) < 20000  # broken
    assert played_in_full(following, 1000), dict(following)
