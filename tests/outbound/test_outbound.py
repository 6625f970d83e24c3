"""The Outbound server and its sessions, against the fake switch's outbound mode."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from genesis_trio import ChannelHangup, ChannelState, Outbound, Session
from genesis_trio.testing import FakeFreeSWITCH

from ._helpers import all_tasks, serving, tasks_under

pytestmark = pytest.mark.trio


async def test_serve_reports_the_bound_port_and_sets_up_the_session(
    fake: FakeFreeSWITCH,
) -> None:
    seen: list[Session] = []
    done = trio.Event()

    async def handler(session: Session) -> None:
        seen.append(session)
        done.set()

    app = Outbound(handler, "127.0.0.1", 0)
    async with serving(app) as (host, port):
        assert host == "127.0.0.1"
        assert port > 0
        assert app.address == (host, port)
        call = await fake.call_socket(
            (host, port), caller_id_number="5551234", destination_number="7000"
        )
        await done.wait()
        session = seen[0]
        assert session.uuid == call.uuid
        assert session.context["Caller-Caller-ID-Number"] == "5551234"
        assert session.context["Channel-Destination-Number"] == "7000"
        assert session.channel.uuid == call.uuid
        assert session.channel.state is ChannelState.EXECUTE
        assert not session.channel.answered
        await call.wait_ended()
        # The handler returned: the session left with exit; the call went on without it.
        assert fake.commands_received == ["connect", "myevents", "linger", "exit"]
        assert call.hangup_cause == "NORMAL_CLEARING"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"event_format": "json", "linger": 5}, ["connect", "myevents json", "linger 5"]),
        ({"linger": False}, ["connect", "myevents"]),
        ({"myevents": False, "linger": False}, ["connect", "event plain CHANNEL_CREATE"]),
    ],
)
async def test_setup_options(
    fake: FakeFreeSWITCH, options: dict[str, object], expected: list[str]
) -> None:
    done = trio.Event()

    async def handler(session: Session) -> None:
        await session.channel.answer()
        done.set()

    app = Outbound(handler, port=0, **options)  # type: ignore[arg-type]
    async with serving(app) as address:
        call = await fake.call_socket(address)
        await done.wait()
        await call.wait_ended()
    sent = fake.commands_received
    assert [line.split(" CHANNEL_STATE")[0] for line in sent[: len(expected)]] == expected
    assert call.answered


async def test_connect_can_be_left_to_the_handler(fake: FakeFreeSWITCH) -> None:
    uuids: list[str] = []

    async def handler(session: Session) -> None:
        assert not session.connected
        with pytest.raises(RuntimeError):
            _ = session.uuid
        await session.connect()
        uuids.append(session.uuid)

    app = Outbound(handler, port=0, connect=False, myevents=False, linger=False)
    async with serving(app) as address:
        call = await fake.call_socket(address)
        await call.wait_ended()
    assert uuids == [call.uuid]
    assert fake.commands_received[:2] == ["connect", "exit"]


async def test_a_failing_handler_is_logged_and_the_server_carries_on(
    fake: FakeFreeSWITCH, caplog: pytest.LogCaptureFixture
) -> None:
    served: list[str] = []

    async def handler(session: Session) -> None:
        served.append(session.uuid)
        if len(served) == 1:
            raise ValueError("the handler broke")

    app = Outbound(handler, port=0)
    with caplog.at_level(logging.ERROR, logger="genesis_trio"):
        async with serving(app) as address:
            first = await fake.call_socket(address)
            await first.wait_ended()
            second = await fake.call_socket(address)
            await second.wait_ended()
    assert served == [first.uuid, second.uuid]
    failures = [r for r in caplog.records if "outbound handler failed" in r.getMessage()]
    assert len(failures) == 1
    assert first.uuid in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], ValueError)


async def test_cancelling_the_server_closes_every_session(fake: FakeFreeSWITCH) -> None:
    running: list[Session] = []
    all_running = trio.Event()
    finished: list[str] = []

    async def handler(session: Session) -> None:
        running.append(session)
        session.start_soon(trio.sleep_forever)  # owned by the session: must end with it
        if len(running) == 3:
            all_running.set()
        try:
            await trio.sleep_forever()
        finally:
            finished.append(session.uuid)

    app = Outbound(handler, port=0)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(app.serve)
        calls = [await fake.call_socket(address) for _ in range(3)]
        await all_running.wait()
        assert len(app.sessions) == 3
        server_tasks = tasks_under(nursery)
        assert len(server_tasks) > 3 * 3  # per call: reader, handler, its own task, ...
        nursery.cancel_scope.cancel()
    assert not server_tasks & all_tasks()
    assert sorted(finished) == sorted(call.uuid for call in calls)
    assert app.sessions == set()
    for session in running:
        assert session.disconnected.is_set()
        assert not session.connection.is_open
    for call in calls:
        await call.wait_ended()  # the socket went away, so the fake ended the call
    assert fake.commands_received.count("exit") == 3


async def test_a_live_session_runs_two_tasks_its_handlers_and_its_readers(
    fake: FakeFreeSWITCH,
) -> None:
    # The reader reads in the task that holds its shielded scope: no task of its own.
    found: list[set[trio.lowlevel.Task]] = []
    done = trio.Event()

    async def handler(session: Session) -> None:
        await session.channel.answer()
        await trio.testing.wait_all_tasks_blocked()
        found.append(tasks_under(trio.lowlevel.current_task()))
        done.set()

    app = Outbound(handler, port=0)
    async with serving(app) as address:
        call = await fake.call_socket(address)
        await done.wait()
        await call.wait_ended()
    (tasks,) = found
    assert len(tasks) == 2
    assert trio.lowlevel.current_task() not in tasks


async def test_linger_notice_after_the_callers_hangup(fake: FakeFreeSWITCH) -> None:
    outcome: list[object] = []

    async def handler(session: Session) -> None:
        channel = session.channel
        await channel.answer()
        try:
            await channel.wait("DTMF")
        except ChannelHangup as gone:
            outcome.append(gone.cause)
        await session.lingering.wait()
        outcome.append(session.linger_notice is not None and session.linger_notice.linger)
        assert channel.hung_up
        assert channel.state is ChannelState.REPORTING  # the socket never sees DESTROY
        assert channel.hangup_cause_q850 == 16

    app = Outbound(handler, port=0)
    async with serving(app) as address:
        call = await fake.call_socket(address)
        await call.wait_for_application("answer")
        await fake.hangup(call.uuid)
    assert outcome == ["NORMAL_CLEARING", True]


async def test_without_linger_the_goodbye_is_a_hangup(fake: FakeFreeSWITCH) -> None:
    outcome: list[BaseException] = []

    async def handler(session: Session) -> None:
        await session.channel.answer()
        try:
            await session.channel.playback("ivr/long.wav")
        except ChannelHangup as gone:
            outcome.append(gone)
        await session.disconnected.wait()
        assert session.disconnect_notice is not None

    fake.set_media_duration("ivr/long.wav", 60)
    app = Outbound(handler, port=0, linger=False)
    async with serving(app) as address:
        call = await fake.call_socket(address)
        await call.wait_for_application("playback")
        call.request_hangup("USER_BUSY")
        await call.wait_ended()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ChannelHangup)


async def test_a_caller_hanging_up_during_a_prompt_is_not_logged_as_an_error(
    fake: FakeFreeSWITCH, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10, item 14: ChannelHangup out of the handler is how calls end, not a failure."""
    prompting = trio.Event()

    fake.set_media_duration("ivr/menu.wav", 60.0)

    async def handler(session: Session) -> None:
        prompting.set()
        await session.channel.playback("ivr/menu.wav")

    app = Outbound(handler, port=0)
    with caplog.at_level(logging.DEBUG, logger="genesis_trio"):
        async with serving(app) as address:
            call = await fake.call_socket(address)
            await prompting.wait()
            await call.wait_for_application("playback")
            call.request_hangup("NORMAL_CLEARING")
            await call.wait_ended()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    ended = [r for r in caplog.records if "ended by the hangup" in r.getMessage()]
    assert len(ended) == 1
    assert ended[0].levelno == logging.DEBUG
    assert call.uuid in ended[0].getMessage()


async def test_sessions_get_the_servers_command_timeout(fake: FakeFreeSWITCH) -> None:
    release = trio.Event()

    async def slow(argument: str) -> str:
        await release.wait()
        return "late\n"

    fake.register_api("slow", slow)
    outcome: list[BaseException] = []
    done = trio.Event()

    async def handler(session: Session) -> None:
        try:
            await session.api("slow")
        except TimeoutError as exc:
            outcome.append(exc)
        finally:
            release.set()
            done.set()

    app = Outbound(handler, "127.0.0.1", 0, command_timeout=0.2, write_timeout=5)
    async with serving(app) as address:
        call = await fake.call_socket(address)
        with trio.fail_after(20):
            await done.wait()
            await call.wait_ended()
    assert len(outcome) == 1
    assert app.write_timeout == 5


# A bare peer in FreeSWITCH's place, to see exactly what the server writes and when.
_CONNECT_REPLY = (
    b"Content-Type: command/reply\nReply-Text: +OK\nEvent-Name: CHANNEL_DATA\n"
    b"Unique-ID: 3f0c5e8a-1d2b-4c6e-9f70-8a1b2c3d4e5f\nChannel-State: CS_EXECUTE\n"
    b"Answer-State: ringing\nSocket-Mode: async\nControl: full\n\n"
)
_BYE = (
    b"Content-Type: command/reply\nReply-Text: +OK bye\n\n"
    b"Content-Type: text/disconnect-notice\nContent-Length: 23\n\nDisconnected, goodbye.\n"
)


async def _read_commands(stream: trio.SocketStream, buffer: bytearray, count: int) -> list[str]:
    while buffer.count(b"\n\n") < count:
        data = await stream.receive_some(4096)
        assert data, "the server closed the socket"
        buffer += data
    commands = []
    for _ in range(count):
        end = buffer.index(b"\n\n")
        commands.append(buffer[:end].decode())
        del buffer[: end + 2]
    return commands


async def test_setup_writes_connect_myevents_and_linger_before_any_reply() -> None:
    """FreeSWITCH parks the call as soon as it ran ``connect``: myevents must come right
    behind it, not a round trip later, or the session misses its first events."""
    sessions: list[Session] = []
    handled = trio.Event()

    async def handler(session: Session) -> None:
        sessions.append(session)
        handled.set()

    app = Outbound(handler, "127.0.0.1", 0)
    async with serving(app) as address:
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream(*address)
            async with stream:
                buffer = bytearray()
                # Nothing answered yet, and all three are here.
                assert await _read_commands(stream, buffer, 3) == ["connect", "myevents", "linger"]
                await stream.send_all(
                    _CONNECT_REPLY
                    + b"Content-Type: command/reply\nReply-Text: +OK Events Enabled\n\n"
                    + b"Content-Type: command/reply\nReply-Text: +OK will linger\n\n"
                )
                await handled.wait()
                assert await _read_commands(stream, buffer, 1) == ["exit"]
                await stream.send_all(_BYE)
    (session,) = sessions
    assert session.uuid == "3f0c5e8a-1d2b-4c6e-9f70-8a1b2c3d4e5f"
    assert session.myevents_enabled
    assert session.linger_seconds == -1
    assert session.channel.state is ChannelState.EXECUTE


async def test_a_refused_myevents_fails_the_setup_even_when_linger_was_sent_with_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handled: list[Session] = []

    async def handler(session: Session) -> None:
        handled.append(session)

    app = Outbound(handler, "127.0.0.1", 0)
    with caplog.at_level(logging.WARNING, logger="genesis_trio"):
        async with serving(app) as address:
            with trio.fail_after(10):
                stream = await trio.open_tcp_stream(*address)
                async with stream:
                    buffer = bytearray()
                    assert await _read_commands(stream, buffer, 3) == [
                        "connect",
                        "myevents",
                        "linger",
                    ]
                    await stream.send_all(
                        _CONNECT_REPLY
                        + b"Content-Type: command/reply\nReply-Text: -ERR no thanks\n\n"
                        + b"Content-Type: command/reply\nReply-Text: +OK will linger\n\n"
                    )
                    # The session gives up and leaves; linger's reply went to its own slot.
                    assert await _read_commands(stream, buffer, 1) == ["exit"]
                    await stream.send_all(_BYE)
    assert handled == []
    failures = [r.getMessage() for r in caplog.records if "setup failed" in r.getMessage()]
    assert len(failures) == 1
    assert "myevents" in failures[0]
    assert "-ERR no thanks" in failures[0]
