"""Filters on the real switch: the library's own events keep coming whatever the user filters,
in whatever order, and nothing is left behind (issue 10, items 1 and 10).

mod_event_socket ORs its filters: once the list holds anything, an event leaves the switch only
if one of its headers equals some filter's value. Every check here reads what the switch sent.
"""

from __future__ import annotations

import uuid as uuid_module

import pytest
import trio
import trio.testing

from genesis_trio import Channel, ChannelNotFound, Event, OriginateError
from genesis_trio.group import RingGroup
from real_switch import RealSwitch, channel_exists, unique_name

from ._calls import parked_call

pytestmark = pytest.mark.trio

DEADLINE = 30  # generous: the switch is shared and the machine is loaded


async def test_bgapi_returns_after_subscribe_all_and_a_filter(freeswitch: RealSwitch) -> None:
    """The review's reproduction: it waited forever for a BACKGROUND_JOB the switch filtered."""
    async with freeswitch.inbound() as client, client.subscribe("ALL"):
        await client.filter("Event-Name", "CHANNEL_CREATE")
        with trio.fail_after(DEADLINE):
            assert "UP" in await client.bgapi("status")


async def test_a_filter_added_while_a_job_runs_lets_that_job_through(
    freeswitch: RealSwitch,
) -> None:
    async with freeswitch.inbound() as client, trio.open_nursery() as nursery:
        await client.events()
        done = trio.Event()
        results: list[str] = []

        async def run_job() -> None:
            results.append(await client.bgapi("msleep 1500"))
            done.set()

        nursery.start_soon(run_job)
        await trio.testing.wait_all_tasks_blocked()  # the bgapi is on its way
        await client.filter("Event-Name", "HEARTBEAT")
        with trio.fail_after(DEADLINE):
            await done.wait()
    assert results == ["+OK"]


async def test_only_the_library_s_own_events_get_past_the_user_filter(
    freeswitch: RealSwitch,
) -> None:
    """Exact filters: another client's BACKGROUND_JOB and other events stay out."""
    marker = f"genesis::{unique_name()}"
    async with (
        freeswitch.inbound() as client,
        freeswitch.inbound() as other,
        client.subscribe("ALL") as everything,
    ):
        await client.filter("Event-Subclass", marker)
        with trio.fail_after(DEADLINE):
            await other.bgapi("status")
            await client.bgapi("status")
            await other.sendevent("CUSTOM", {"Event-Subclass": marker})
            seen: list[Event] = []
            async for event in everything:
                seen.append(event)
                if event.subclass == marker:
                    break
    assert [event.name for event in seen] == ["BACKGROUND_JOB", "CUSTOM"]


async def test_a_call_with_filters_before_and_after_it(freeswitch: RealSwitch) -> None:
    async with freeswitch.inbound() as client:
        await client.events()
        await client.filter("Event-Name", "CUSTOM")
        with trio.fail_after(DEADLINE):
            channel = await Channel.create(client, "loopback/9002/default")
            followed = await Channel.from_uuid(client, channel.uuid)
            await client.filter("Event-Name", "HEARTBEAT")
            completion = await channel.playback("tone_stream://%(200,0,440)")
            assert completion["Application-Response"] == "FILE PLAYED"
            await channel.hangup()
            await followed.wait("CHANNEL_HANGUP_COMPLETE")
        assert not await channel_exists(client, channel.uuid)


async def test_a_ring_group_answers_with_a_filter_in_place(freeswitch: RealSwitch) -> None:
    """Before: the leg answered, Channel.create never returned, the deadline hung it up."""
    async with freeswitch.inbound() as client, client.subscribe("ALL"):
        await client.filter("Event-Name", "CHANNEL_CREATE")
        with trio.fail_after(DEADLINE):
            agent = await RingGroup.ring(
                client, ["loopback/9004/default", "loopback/9002/default"], timeout=15
            )
            assert agent is not None
            assert agent.answered
            assert await channel_exists(client, agent.uuid)
            await agent.hangup()


async def test_failures_leave_no_filter_behind(freeswitch: RealSwitch) -> None:
    """50 failed originates (no channel, hence no CHANNEL_DESTROY) and 50 ChannelNotFound.

    Before, each failure left a ``filter Unique-ID <uuid>`` on the switch. The switch cannot
    list a connection's filters, so besides the client's own account this reads the event
    stream: a call placed afterwards with the uuid ``from_uuid`` did not find must not get
    through, while a marker the user's filter admits does.
    """
    marker = f"genesis::{unique_name()}"
    missing = str(uuid_module.uuid4())
    async with freeswitch.inbound() as client, freeswitch.inbound() as control:
        await client.events()
        await client.filter("Event-Subclass", marker)
        with trio.fail_after(120):
            for _ in range(50):
                with pytest.raises(OriginateError) as refused:
                    await Channel.create(client, "error/user_busy")
                assert refused.value.cause == "USER_BUSY"
                with pytest.raises(ChannelNotFound):
                    await Channel.from_uuid(client, missing)
            await trio.testing.wait_all_tasks_blocked()  # the filter removals went out
            assert client.switch_filters == [("Event-Subclass", marker)]
            # Sent is not yet applied: the switch runs one connection's commands in order,
            # so once this reply is back it has applied every removal sent before it (the
            # call below is placed on another connection, which does not wait for them).
            await client.api("status")
            async with (
                client.subscribe("ALL", request=False) as everything,
                parked_call(control, uuid=missing),
            ):
                await control.sendevent("CUSTOM", {"Event-Subclass": marker})
                first = await everything.receive()
    assert (first.name, first.subclass) == ("CUSTOM", marker)
