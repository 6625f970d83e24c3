"""The Outbound server with the real switch connecting to it.

``originate {outbound_port=N}loopback/9000/default &park()`` makes the switch run
``socket 127.0.0.1:N async full`` on the ``-b`` leg (the session's channel); the ``-a``
leg, parked, is the far end. The originate returns once the session answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from genesis_trio import (
    ChannelHangup,
    ChannelState,
    Event,
    EventFormat,
    Inbound,
    Outbound,
    RingGroup,
    Session,
)
from outbound_serving import serving
from real_switch import (
    TAG_VARIABLE,
    CallWatch,
    RealSwitch,
    channel_exists,
    live_channel_uuids,
    wait_until,
    watch_calls,
)

pytestmark = pytest.mark.trio

DEADLINE = 30
TONE = "tone_stream://%(200,0,440);loops=2"
LONG_TONE = "tone_stream://%(60000,0,440)"


@asynccontextmanager
async def outbound(
    handler: Callable[[Session], Awaitable[Any]], **options: Any
) -> AsyncIterator[int]:
    """Serve ``handler`` on a free loopback port; yields the port."""
    app = Outbound(handler, "127.0.0.1", 0, **options)
    async with serving(app) as (_, port):
        yield port


async def dial(client: Inbound, port: int, watch: CallWatch) -> str:
    """Route one call to our server; returns the job's reply (``+OK <a-leg uuid>``)."""
    variables = f"outbound_port={port},{TAG_VARIABLE}={watch.tag}"
    return await client.bgapi(
        f"originate {{{variables}}}loopback/9000/default &park()", check=False
    )


@pytest.mark.parametrize("event_format", ["plain", "json"])
async def test_a_session_answers_plays_and_hangs_up(
    freeswitch: RealSwitch, event_format: EventFormat
) -> None:
    sessions: list[Session] = []
    results: dict[str, Any] = {}

    async def handler(session: Session) -> None:
        sessions.append(session)
        results["answer"] = await session.channel.answer()
        results["playback"] = await session.channel.playback(TONE)
        results["tag"] = await session.getvar(TAG_VARIABLE)
        results["hangup"] = await session.hangup("NORMAL_CLEARING")

    async with (
        watch_calls(freeswitch) as watch,
        freeswitch.inbound() as client,
        outbound(handler, event_format=event_format) as port,
    ):
        with trio.fail_after(DEADLINE):
            reply = await dial(client, port, watch)
            assert reply.startswith("+OK ")
            (session,) = sessions
            await session.disconnected.wait()
            await watch.assert_all_gone(2)
        assert session.context.get("Channel-Name") == "loopback/9000-b"
        assert session.context.get(f"variable_{TAG_VARIABLE}") == watch.tag
        assert results["tag"] == watch.tag
        assert results["playback"].get("Application-Response") == "FILE PLAYED"
        assert results["playback"].get("variable_playback_ms") == "400"
        assert results["hangup"].hangup_cause == "NORMAL_CLEARING"
        # The switch agrees: the session's leg answered, played, and hung up as asked.
        (b_leg,) = watch.named("loopback/9000-b")
        assert b_leg == session.uuid
        (a_leg,) = watch.named("loopback/9000-a")
        assert reply.strip() == f"+OK {a_leg}"
        names = watch.names(b_leg)
        assert "CHANNEL_ANSWER" in names
        assert names.index("PLAYBACK_START") < names.index("PLAYBACK_STOP")
        assert (await watch.wait_event("CHANNEL_HANGUP", b_leg)).hangup_cause == "NORMAL_CLEARING"
        # We left with exit, and the switch said goodbye.
        assert session.disconnect_notice is not None


async def test_the_switch_runs_connect_myevents_and_linger_sent_in_one_write(
    freeswitch: RealSwitch,
) -> None:
    """The session writes its three setup commands together; FreeSWITCH reads them back
    to back and answers each, in order (the handler's answer then arrives via myevents,
    and linger holds the socket past the hangup)."""
    sessions: list[Session] = []
    results: dict[str, Any] = {}

    async def handler(session: Session) -> None:
        sessions.append(session)
        results["setup"] = (session.myevents_enabled, session.linger_seconds)
        results["answer"] = await session.channel.answer()
        await session.hangup("NORMAL_CLEARING")
        await session.lingering.wait()

    async with (
        watch_calls(freeswitch) as watch,
        freeswitch.inbound() as client,
        outbound(handler) as port,
    ):
        with trio.fail_after(DEADLINE):
            await dial(client, port, watch)
            (session,) = sessions
            await session.disconnected.wait()
            await watch.assert_all_gone(2)
    assert results["setup"] == (True, -1)
    # The answer application's completion, seen through myevents.
    assert results["answer"].name == "CHANNEL_EXECUTE_COMPLETE"
    assert results["answer"].unique_id == session.uuid
    assert session.channel.answered
    assert session.context.get("Socket-Mode") == "async"
    assert session.linger_notice is not None


@pytest.mark.parametrize("linger", [True, False])
async def test_linger_keeps_the_events_after_the_hangup(
    freeswitch: RealSwitch, linger: bool
) -> None:
    """Killed from outside: with linger the session still receives CHANNEL_HANGUP_COMPLETE
    (and a linger notice); without it the switch says goodbye at the hangup."""
    sessions: list[Session] = []
    answered = trio.Event()
    results: dict[str, Any] = {}

    async def handler(session: Session) -> None:
        sessions.append(session)
        await session.channel.answer()
        answered.set()
        if linger:
            await session.lingering.wait()
            results["complete"] = await session.channel.wait("CHANNEL_HANGUP_COMPLETE")
        else:
            await session.disconnected.wait()

    async with (
        watch_calls(freeswitch) as watch,
        freeswitch.inbound() as client,
        outbound(handler, linger=linger) as port,
    ):
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(dial, client, port, watch)
                await answered.wait()
            (session,) = sessions
            await client.api(f"uuid_kill {session.uuid} CALL_REJECTED")
            await session.disconnected.wait()
            await watch.assert_all_gone(2)
        if linger:
            assert session.linger_notice is not None
            assert results["complete"].hangup_cause == "CALL_REJECTED"
            assert results["complete"].get("variable_hangup_cause_q850") == "21"
        else:
            assert session.linger_notice is None
            assert not session.lingering.is_set()
            assert session.disconnect_notice is not None
        assert session.channel.hung_up


async def test_the_peer_hanging_up_during_a_playback(freeswitch: RealSwitch) -> None:
    """The far end hangs up during a 60 s tone: the playback ends at once.

    Which the switch says first races: the leg's CHANNEL_HANGUP (the playback raises
    ChannelHangup), or the playback's completion with ``PLAYBACK ERROR`` (the media went
    away; the hangup follows, and the next operation raises ChannelHangup).
    """
    outcomes: list[BaseException | Event] = []
    handled = trio.Event()

    async def handler(session: Session) -> None:
        await session.channel.answer()
        try:
            outcomes.append(await session.channel.playback(LONG_TONE))
            await session.channel.playback(TONE)
        except ChannelHangup as exc:
            outcomes.append(exc)
        finally:
            handled.set()

    async with (
        watch_calls(freeswitch) as watch,
        freeswitch.inbound() as client,
        outbound(handler) as port,
    ):
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(dial, client, port, watch)
                await watch.wait_for(
                    lambda e: (
                        e.name == "PLAYBACK_START" and e.get("Channel-Name") == "loopback/9000-b"
                    )
                )
                (peer,) = watch.named("loopback/9000-a")
                await client.api(f"uuid_kill {peer} NORMAL_CLEARING")
            await watch.assert_all_gone(2)
            # Long before the 60 s tone would have ended.
            await handled.wait()
        (b_leg,) = watch.named("loopback/9000-b")
        *completed, failure = outcomes
        assert isinstance(failure, ChannelHangup)
        assert failure.uuid == b_leg
        for completion in completed:
            assert isinstance(completion, Event)
            assert completion.get("Application-Response") == "PLAYBACK ERROR"
        stopped = await watch.wait_event("PLAYBACK_STOP", b_leg)
        assert stopped.unique_id == b_leg


async def test_fifty_concurrent_sessions(freeswitch: RealSwitch) -> None:
    calls = 50
    completions: list[Event] = []
    all_played = trio.Event()

    async def handler(session: Session) -> None:
        await session.channel.answer()
        completions.append(await session.channel.playback(TONE))
        if len(completions) == calls:
            all_played.set()
        await session.hangup()

    async with (
        watch_calls(freeswitch) as watch,
        freeswitch.inbound() as client,
        outbound(handler) as port,
    ):
        with trio.fail_after(90):
            replies: list[str] = []

            async def one_call() -> None:
                replies.append(await dial(client, port, watch))

            async with trio.open_nursery() as nursery:
                for _ in range(calls):
                    nursery.start_soon(one_call)
            assert len(replies) == calls
            assert all(reply.startswith("+OK ") for reply in replies)
            await all_played.wait()
            await watch.assert_all_gone(2 * calls, within=60)
        assert all(c.get("Application-Response") == "FILE PLAYED" for c in completions)
        b_legs = watch.named("loopback/9000-b")
        assert len(b_legs) == calls
        assert {c.unique_id for c in completions} == set(b_legs)


async def test_cancelling_the_server_with_live_calls(private_freeswitch: RealSwitch) -> None:
    """Five calls sit in their handlers; cancelling the server closes each session with
    exit, and the switch then ends every call: nothing is left on it."""
    calls = 5
    sessions: list[Session] = []
    all_in = trio.Event()

    async def handler(session: Session) -> None:
        await session.channel.answer()
        sessions.append(session)
        if len(sessions) == calls:
            all_in.set()
        await trio.sleep_forever()

    async with watch_calls(private_freeswitch) as watch, private_freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as dialling, outbound(handler) as port:
                for _ in range(calls):
                    dialling.start_soon(dial, client, port, watch)
                await all_in.wait()

                async def all_live() -> bool:
                    live = await live_channel_uuids(client)
                    return {session.uuid for session in sessions} <= live

                await wait_until(all_live, within=DEADLINE)
                # The server is cancelled here, its sessions with it.
            for session in sessions:
                assert session.disconnected.is_set()
                # The switch answered our exit with its goodbye.
                assert session.disconnect_notice is not None
            await watch.assert_all_gone(2 * calls)
            for session in sessions:
                assert not await channel_exists(client, session.uuid)

            async def nothing_left() -> bool:
                return not await live_channel_uuids(client)

            await wait_until(nothing_left, within=DEADLINE)


async def test_a_session_rings_agents_and_bridges_the_caller(freeswitch: RealSwitch) -> None:
    """The documented pattern: an outbound handler (without myevents) rings a group and
    bridges its caller to the agent who answered."""
    results: dict[str, Any] = {}
    bridged = trio.Event()

    async def handler(session: Session) -> None:
        await session.channel.answer()
        agent = await RingGroup.ring(
            session, ["loopback/9004/default", "loopback/9002/default"], timeout=DEADLINE,
            variables=watch.variables,
        )  # fmt: skip
        assert agent is not None
        results["agent"] = agent
        results["bridge"] = await session.channel.bridge(agent)
        bridged.set()
        await session.channel.wait(ChannelState.HANGUP)

    async with (
        watch_calls(freeswitch) as watch,
        freeswitch.inbound() as client,
        outbound(handler, myevents=False) as port,
    ):
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(dial, client, port, watch)
                await bridged.wait()
                agent = results["agent"]
                (caller,) = watch.named("loopback/9000-b")
                assert await client.api(f"uuid_getvar {caller} bridge_uuid") == agent.uuid
                await client.api(f"uuid_kill {agent.uuid} NORMAL_CLEARING")
            # 9000 a/b, the losing 9004 a/b, the agent's 9002 a/b.
            await watch.assert_all_gone(6)


async def test_the_caller_hanging_up_during_a_ring_ends_it(freeswitch: RealSwitch) -> None:
    failures: list[BaseException] = []
    done = trio.Event()

    async def handler(session: Session) -> None:
        await session.channel.answer()
        try:
            await RingGroup.ring(
                session, ["loopback/9004/default"] * 2, timeout=DEADLINE,
                variables=watch.variables,
            )  # fmt: skip
        except ChannelHangup as exc:
            failures.append(exc)
        finally:
            done.set()

    async with (
        watch_calls(freeswitch) as watch,
        freeswitch.inbound() as client,
        outbound(handler, myevents=False) as port,
    ):
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(dial, client, port, watch)
                await watch.wait_for(
                    lambda e: (
                        e.name == "CHANNEL_PROGRESS" and e.get("Channel-Name") == "loopback/9004-a"
                    ),
                    count=2,
                )
                (peer,) = watch.named("loopback/9000-a")
                await client.api(f"uuid_kill {peer} NORMAL_CLEARING")
                await done.wait()
            await watch.assert_all_gone(6)
        (failure,) = failures
        assert isinstance(failure, ChannelHangup)
        (caller,) = watch.named("loopback/9000-b")
        assert failure.uuid == caller
        for leg in watch.named("loopback/9004-a"):
            hangup = await watch.wait_event("CHANNEL_HANGUP", leg)
            assert hangup.hangup_cause == "ORIGINATOR_CANCEL"
