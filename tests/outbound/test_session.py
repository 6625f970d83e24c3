"""Session commands, and the outbound wire compared with the recorded session."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from esl_captures import read_capture
from genesis_trio import Channel, ChannelError, Session
from genesis_trio.protocol import CommandReply, ESLParser
from genesis_trio.testing import FakeFreeSWITCH

from ._helpers import session_call

pytestmark = pytest.mark.trio


def recorded_connect_reply() -> CommandReply:
    parser = ESLParser()
    parser.receive_data(read_capture("outbound_session_plain.bin"))
    first = parser.next_event()
    assert isinstance(first, CommandReply)
    return first


async def test_connect_reply_has_the_recorded_shape(fake: FakeFreeSWITCH) -> None:
    recorded = recorded_connect_reply()
    assert recorded.event is not None
    async with session_call(fake) as (session, _):
        ours = session.context
        assert ours.name == "CHANNEL_DATA"
        names = [name for name, _ in ours.headers.multi_items() if not name.startswith("variable_")]
        recorded_names = [
            name
            for name, _ in recorded.event.headers.multi_items()
            if not name.startswith("variable_")
        ]
        # Same header blocks, in the same order (the Channel-*, channel data, Caller-* parts).
        assert names[:14] == recorded_names[:14]
        assert [n for n in names if n.startswith("Channel-")][:10] == [
            n for n in recorded_names if n.startswith("Channel-")
        ][:10]
        assert ours["Channel-State"] == "CS_EXECUTE"
        assert ours["Answer-State"] == "ringing"
        assert ours["Call-Direction"] == "inbound"
        assert ours.variable("current_application") == "socket"


async def test_session_commands(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with session_call(fake) as (session, far):
        await session.setvar("lang", "fr")
        assert await session.getvar("lang") == "fr"
        # Not a variable, but uuid_getvar falls back to the caller profile, as recorded.
        assert await session.getvar("destination_number") == "9000"
        assert await session.getvar("never_set") is None
        await session.setvar("lang", None)
        assert "lang" not in far.variables
        await session.resume()
        assert far.variables["socket_resume"] == "true"
        await session.divert_events(True)
        completion = await session.execute(
            "playback", "beep.wav", event_lock=True, asynchronous=True, loops=2
        )
        _, headers = fake.messages_received[-1]
        assert headers["event-lock"] == "true"
        assert headers["async"] == "true"
        assert headers["loops"] == "2"
        assert headers["event-uuid"] == completion.application_uuid
        assert "sendmsg" in fake.commands_received  # no uuid: the session's own channel
        runs = [run for run in far.applications if run.name == "playback"]
        assert len(runs) == 2  # loops: 2

        with pytest.raises(ChannelError, match="BACKGROUND_JOB"):
            await session.bgapi("status")
        with pytest.raises(ChannelError, match="myevents"):
            await Channel.create(session, "user/1000")

        hangup = await session.hangup("CALL_REJECTED")
        assert hangup is not None
        assert far.hangup_cause == "CALL_REJECTED"
        _, headers = fake.messages_received[-1]
        assert headers == {"call-command": "hangup", "hangup-cause": "CALL_REJECTED"}


async def test_linger_seconds_then_goodbye(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with session_call(fake, linger=2) as (session, far):
        far.request_hangup("NORMAL_CLEARING")
        await session.lingering.wait()
        lingered_at = trio.current_time()
        assert session.linger_notice is not None
        assert session.linger_notice.headers["Linger-Time"] == "2"
        await session.disconnected.wait()
        assert trio.current_time() - lingered_at == pytest.approx(2)
        assert session.disconnect_notice is not None
        await session.connection.closed.wait()  # and the switch closed the socket
        assert not session.is_connected


async def test_the_sent_commands_match_the_recorded_session(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    recorded = read_capture("outbound_session_plain.sent.bin").decode().split("\n\n")
    recorded_lines = [block.split("\n")[0] for block in recorded if block]
    finished = trio.Event()

    async def flow(session: Session) -> None:
        # What the recording's client did, through the public API.
        await session.channel.answer()
        await session.channel.playback("tone_stream://%(500,100,440,480);loops=2")
        await session.getvar("destination_number")
        await session.hangup("NORMAL_CLEARING")
        finished.set()

    async with session_call(fake) as (session, far):
        await flow(session)
    await finished.wait()
    await far.wait_ended()
    api_line = f"api uuid_getvar {far.uuid} destination_number"
    expected = [
        line if not line.startswith("api uuid_getvar") else api_line for line in recorded_lines
    ]
    assert fake.commands_received == expected


async def test_from_uuid_on_a_myevents_session_is_refused_at_once(fake: FakeFreeSWITCH) -> None:
    """Issue 10, item 12: no event of another channel reaches a myevents session."""
    async with session_call(fake) as (session, _):
        other = "0a1b2c3d-0000-4000-8000-000000000000"
        sent = len(fake.commands_received)
        with pytest.raises(ChannelError, match="myevents"):
            await Channel.from_uuid(session, other)
        assert len(fake.commands_received) == sent  # refused before anything was written
        # The call's own channel is what myevents does deliver: that one is fine.
        own = await Channel.from_uuid(session, session.uuid)
        assert own.uuid == session.uuid


async def test_a_filter_on_a_session_keeps_its_channel_s_events(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 10, item 1, outbound side: myevents passes only what the filters let through."""
    async with session_call(fake) as (session, far):
        await session.filter("Event-Name", "CUSTOM")
        with trio.fail_after(30):
            completion = await session.channel.playback("ivr/welcome.wav")
        assert completion.application == "playback"
        assert sorted(session.switch_filters) == [
            ("Event-Name", "CUSTOM"),
            ("Unique-ID", far.uuid),
        ]
