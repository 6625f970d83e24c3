"""FreeSWITCH-side filters and subscriptions: the library's own events keep coming, whatever
the user filters and in whatever order; nothing is left behind; a new connection starts clean.

Issue 10, items 1, 9 and 10 (on the fake; tests/real/test_switch_state.py on the real switch).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from genesis_trio import Channel, ChannelNotFound, Inbound, OriginateError
from genesis_trio.group import RingGroup
from genesis_trio.testing import Destination, FakeFreeSWITCH

pytestmark = pytest.mark.anyio


def connect(fake: FakeFreeSWITCH) -> Inbound:
    return Inbound(fake.host, fake.port, "ClueCon")


async def settled(done: Callable[[], bool]) -> None:
    """Until ``done()``, looked at whenever every task waits: the connection's own tasks
    (filter removals) never make anyone wait, and nothing announces when they are through.

    On asyncio every task can look blocked while a reply is still unread in the selector:
    hence the loop, not one wait. A state never reached falls through to the test's assert.
    """
    with anyio.move_on_after(30):
        while not done():
            await anyio.wait_all_tasks_blocked()


async def wait_for_command(fake: FakeFreeSWITCH, prefix: str) -> None:
    """Wait until the switch has read a command (a guard, not a timing claim)."""
    with anyio.fail_after(30):
        await fake.wait_for_command(prefix)


@pytest.mark.parametrize("listen", ["subscribe", "events", "bgapi first"])
async def test_bgapi_returns_after_a_user_filter(fake: FakeFreeSWITCH, listen: str) -> None:
    """The review's reproduction: subscribe ALL, filter Event-Name, then bgapi hung forever."""
    async with connect(fake) as client:
        if listen == "subscribe":
            async with client.subscribe("ALL"):
                await client.filter("Event-Name", "CHANNEL_CREATE")
                with anyio.fail_after(5):
                    assert "UP" in await client.bgapi("status")
        else:
            if listen == "bgapi first":
                assert "UP" in await client.bgapi("status")  # subscribes BACKGROUND_JOB
            else:
                await client.events()
            await client.filter("Event-Name", "CHANNEL_CREATE")
            with anyio.fail_after(5):
                assert "UP" in await client.bgapi("status")
        # Only the job that ran had a filter, and only while it ran.
        await settled(lambda: fake.connection_filters == [[("Event-Name", "CHANNEL_CREATE")]])
        assert fake.connection_filters == [[("Event-Name", "CHANNEL_CREATE")]]


async def test_a_filter_added_while_a_job_runs_lets_that_job_through(
    fake: FakeFreeSWITCH,
) -> None:
    release = anyio.Event()

    async def slow(arguments: str) -> str:
        await release.wait()
        return f"+OK {arguments}\n"

    fake.register_api("slow", slow)
    async with connect(fake) as client, anyio.create_task_group() as tasks:
        await client.events()
        results: list[str] = []
        answered = anyio.Event()

        async def run_job() -> None:
            results.append(await client.bgapi("slow one"))
            answered.set()

        tasks.start_soon(run_job)
        await wait_for_command(fake, "bgapi slow")
        await client.filter("Event-Name", "HEARTBEAT")
        # The job's own filter went in before the user's first one.
        filters = fake.connection_filters[0]
        assert filters[-1] == ("Event-Name", "HEARTBEAT")
        assert [name for name, _ in filters[:-1]] == ["Job-UUID"]
        release.set()
        with anyio.fail_after(30):
            await answered.wait()
        assert results == ["+OK one\n"]


async def test_the_user_filter_still_filters(fake: FakeFreeSWITCH) -> None:
    """Exact library filters: another connection's jobs and unrelated events stay out."""
    async with connect(fake) as client, connect(fake) as other:
        async with client.subscribe("ALL") as everything:
            await client.filter("Event-Name", "CUSTOM")
            await other.bgapi("status")  # its BACKGROUND_JOB must not reach us
            await client.bgapi("status")  # ours passes, through its own filter
            await other.sendevent("CUSTOM", {"Event-Subclass": "demo::x"})
            with anyio.fail_after(5):
                names = [(await everything.receive()).name for _ in range(2)]
            await client.api("echo sync")  # anything else sent to us has arrived by now
            # (inside the block: receive_nowait on a closed subscription raises)
            assert everything.receive_nowait() is None
        assert names == ["BACKGROUND_JOB", "CUSTOM"]


async def test_channels_keep_their_events_with_filters_in_either_order(
    fake: FakeFreeSWITCH,
) -> None:
    fake.add_destination("user/*", Destination(answer_after=0.1))
    async with connect(fake) as client:
        await client.filter("Event-Name", "CUSTOM")
        with anyio.fail_after(10):
            first = await Channel.create(client, "user/1000")  # filter first, then the channel
            second = await Channel.create(client, "user/1001")
            followed = await Channel.from_uuid(client, second.uuid)
            await client.filter("Event-Name", "HEARTBEAT")  # and another filter after them
            await first.playback("ivr/welcome.wav")
            await first.hangup()
            await fake.hangup(second.uuid)
            await followed.wait("CHANNEL_HANGUP_COMPLETE")
        assert second.hung_up
        assert followed.hung_up
        expected = [("Event-Name", "CUSTOM"), ("Event-Name", "HEARTBEAT")]
        await settled(lambda: sorted(fake.connection_filters[0]) == expected)
        assert sorted(fake.connection_filters[0]) == expected


async def test_a_ring_group_answers_with_filters_in_place(fake: FakeFreeSWITCH) -> None:
    fake.add_destination("user/1000", Destination(answer_after=None))
    fake.add_destination("user/1001", Destination(answer_after=0.2))
    async with connect(fake) as client:
        await client.events()
        await client.filter("Event-Name", "CHANNEL_CREATE")
        with anyio.fail_after(10):
            agent = await RingGroup.ring(client, ["user/1000", "user/1001"], timeout=5)
        assert agent is not None
        assert agent.answered
        assert fake.channels[agent.uuid].hangup_cause is None  # not hung up as NO_ANSWER
        await agent.hangup()


async def test_deleting_the_last_user_filter_clears_the_list_in_one_step(
    fake: FakeFreeSWITCH,
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=0))
    async with connect(fake) as client:
        await client.events()
        await client.filter("Event-Name", "CUSTOM")
        await client.filter("Event-Name", "HEARTBEAT")
        channel = await Channel.create(client, "user/1000")
        await settled(lambda: len(fake.connection_filters[0]) == 3)  # the Job-UUID one is gone
        assert len(fake.connection_filters[0]) == 3
        await client.filter_delete("Event-Name", "HEARTBEAT")
        assert fake.commands_received[-1] == "filter delete Event-Name HEARTBEAT"
        assert len(fake.connection_filters[0]) == 2
        assert client.filters == [("Event-Name", "CUSTOM")]
        await client.filter_delete("Event-Name")
        assert fake.commands_received[-1] == "filter delete all"
        assert fake.connection_filters == [[]]
        assert client.filters == []
        # The library's filter comes back (first) with the next user filter.
        await client.filter("Event-Name", "CUSTOM")
        assert fake.connection_filters[0] == [
            ("Unique-ID", channel.uuid),
            ("Event-Name", "CUSTOM"),
        ]
        with anyio.fail_after(5):
            await channel.hangup()


async def test_failed_originates_and_missing_channels_leave_no_filter(
    fake: FakeFreeSWITCH,
) -> None:
    """Issue 10, item 10: 50 failures of each kind, and only the user's filter is left."""
    fake.add_destination("user/busy", Destination(reject_cause="USER_BUSY"))
    async with connect(fake) as client:
        await client.filter("Event-Name", "CUSTOM")
        with anyio.fail_after(60):
            for _ in range(50):
                with pytest.raises(OriginateError):
                    await Channel.create(client, "user/busy")
                with pytest.raises(OriginateError):
                    await Channel.create(client, "user/nobody")  # no route: no channel at all
                with pytest.raises(ChannelNotFound):
                    await Channel.from_uuid(client, "0a1b2c3d-0000-4000-8000-000000000000")
        await settled(lambda: fake.connection_filters == [[("Event-Name", "CUSTOM")]])
        assert fake.connection_filters == [[("Event-Name", "CUSTOM")]]


async def test_reentering_an_inbound_starts_from_a_clean_connection(
    fake: FakeFreeSWITCH,
) -> None:
    """Issue 10, item 9: subscriptions, filters and `event ALL` belong to one connection."""
    client = connect(fake)
    async with client:
        await client.events()
        await client.filter("Event-Name", "CHANNEL_CREATE")
        async with client.subscribe("CUSTOM"):
            pass
    sent = len(fake.commands_received)
    async with client:
        with anyio.fail_after(5):
            assert "UP" in await client.bgapi("status")
        async with client.subscribe("demo::again") as custom:
            await client.sendevent("CUSTOM", {"Event-Subclass": "demo::again"})
            with anyio.fail_after(5):
                event = await custom.receive()
        assert event.subclass == "demo::again"
    again = fake.commands_received[sent:]
    assert "event plain BACKGROUND_JOB" in again
    assert "event plain CUSTOM demo::again" in again
    assert not any(command.startswith("filter") for command in again)
    assert client.filters == []


async def test_subscribe_by_name_and_uuid_gets_only_those_events_of_that_channel(
    fake: FakeFreeSWITCH,
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=0))
    async with connect(fake) as client:
        channel = await Channel.create(client, "user/1000")
        async with client.subscribe("CHANNEL_EXECUTE_COMPLETE", uuid=channel.uuid) as done:
            with anyio.fail_after(10):
                await channel.playback("ivr/welcome.wav")
                event = await done.receive()
        assert (event.name, event.application) == ("CHANNEL_EXECUTE_COMPLETE", "playback")
        await channel.hangup()
