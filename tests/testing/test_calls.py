"""Simulated calls: originate outcomes, lifecycle events, hangups, channel APIs."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from genesis_trio.protocol import CommandReply, Event
from genesis_trio.testing import Destination, FakeFreeSWITCH

from ._raw_client import capture_bytes, connect, parse_all

pytestmark = pytest.mark.trio

A = "b557089b-0790-4637-a8f5-a6632ecf03e6"
ANSWERED_LEG = [
    "CHANNEL_UUID",
    "CHANNEL_OUTGOING",
    "CHANNEL_STATE",
    "CHANNEL_CREATE",
    "CHANNEL_ORIGINATE",
    "CHANNEL_STATE",
    "CHANNEL_STATE",
]
HANGUP_OF_PARKED_LEG = [
    "CHANNEL_HANGUP",
    "CHANNEL_UNPARK",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_STATE",
    "CHANNEL_CALLSTATE",
    "CHANNEL_STATE",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_DESTROY",
    "CHANNEL_STATE",
]


def names(events: list[Event]) -> list[str]:
    return [event.name or "" for event in events]


def of_channel(events: list[Event], uuid: str) -> list[Event]:
    return [event for event in events if event.unique_id == uuid]


def structure(event: Event) -> list[str]:
    """Header names, variables aside (they differ by endpoint and history)."""
    return [name for name, _ in event.headers.multi_items() if not name.startswith("variable_")]


async def test_answered_call(fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock) -> None:
    fake.add_destination("user/1000", Destination(answer_after=2.5))
    async with connect(fake) as client:
        await client.command("event plain ALL")
        started = trio.current_time()
        body = await client.api(
            f"originate {{origination_uuid={A},origination_caller_id_number=1000,"
            "origination_caller_id_name=Alice,team=blue}user/1000 &park()"
        )
        assert body == f"+OK {A}\n"
        assert trio.current_time() - started == pytest.approx(2.5)
        events = await client.events_until("CHANNEL_PARK", uuid=A)
        assert names(of_channel(events, A)) == [
            *ANSWERED_LEG,
            "CHANNEL_PROGRESS",
            "CHANNEL_CALLSTATE",
            "CHANNEL_ANSWER",
            "CHANNEL_CALLSTATE",
            "CALL_UPDATE",
            "CHANNEL_STATE",
            "CHANNEL_EXECUTE",
            "CHANNEL_PARK",
        ]
        by_name = {event.name: event for event in of_channel(events, A)}
        answer = by_name["CHANNEL_ANSWER"]
        assert answer.answer_state == "answered"
        assert answer["Caller-Caller-ID-Name"] == "Alice"
        assert answer.variable("team") == "blue"
        assert answer.variable("origination_caller_id_number") == "1000"
        assert answer.variable("sip_call_id")
        assert answer.call_uuid == A
        assert by_name["CALL_UPDATE"]["Caller-Callee-ID-Name"] == "Alice"
        assert by_name["CHANNEL_EXECUTE"].application == "park"
        assert by_name["CHANNEL_EXECUTE"].application_uuid
        progress = int(answer["Caller-Channel-Progress-Time"])
        answered = int(answer["Caller-Channel-Answered-Time"])
        assert answered - progress == 2_500_000
        channel = fake.channels[A]
        assert (channel.state, channel.answered, channel.application) == (
            "CS_EXECUTE",
            True,
            "park",
        )
        assert channel.dial_path == "user/1000"
        assert channel.variables["team"] == "blue"


async def test_loopback_leg_matches_the_recorded_headers(fake: FakeFreeSWITCH) -> None:
    recorded = parse_all(capture_bytes("inbound_plain_lifecycle.bin"))
    recorded_events = [m for m in recorded if isinstance(m, Event)]
    recorded_a = of_channel(recorded_events, "4fb84043-2e31-43fd-9665-1f43ee9dc994")
    recorded_b = of_channel(recorded_events, "2bf10cf1-3e76-4f1a-9aab-4d0e78fde49c")
    recorded_setup = recorded_a[: names(recorded_a).index("CHANNEL_PARK") + 1]
    recorded_hangup = recorded_b[names(recorded_b).index("CHANNEL_HANGUP") :]

    fake.add_destination("loopback/9002/default", Destination(answer_after=0))
    async with connect(fake) as client:
        await client.command("event plain ALL")
        body = await client.api(
            f"originate {{origination_uuid={A},origination_caller_id_number=1001,"
            "origination_caller_id_name=Bob,loopback_bowout=false}loopback/9002/default &park"
        )
        assert body == f"+OK {A}\n"
        setup = of_channel(await client.events_until("CHANNEL_PARK", uuid=A), A)
        assert names(setup) == names(recorded_setup)
        for ours, theirs in zip(setup, recorded_setup, strict=True):
            assert structure(ours) == structure(theirs), ours.name
            for header in ("Channel-State", "Channel-State-Number", "Channel-Call-State"):
                assert ours[header] == theirs[header], (ours.name, header)
            assert ours["Channel-Name"] == "loopback/9002-a"
            assert ours["Event-Calling-Function"] == theirs["Event-Calling-Function"]

        assert await client.api(f"uuid_kill {A}") == "+OK\n"
        teardown = of_channel(await client.events_until("CHANNEL_DESTROY", uuid=A), A)
        teardown.append(await client.next_event())
        assert names(teardown) == names(recorded_hangup) == HANGUP_OF_PARKED_LEG
        for ours, theirs in zip(teardown, recorded_hangup, strict=True):
            mine = [n for n in structure(ours) if n != "Channel-HIT-Dialplan"]
            assert mine == [n for n in structure(theirs) if n != "Channel-HIT-Dialplan"]
            for header in ("Channel-State", "Channel-State-Number", "Channel-Call-State"):
                assert ours[header] == theirs[header], (ours.name, header)
        complete = teardown[names(teardown).index("CHANNEL_HANGUP_COMPLETE")]
        assert complete.get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING"]
        assert complete.variable("hangup_cause_q850") == "16"
        assert complete.variable("sip_call_id") is None  # a loopback leg has no SIP Call-ID
    assert A not in fake.channels
    assert fake.channel_history[-1].hangup_cause == "NORMAL_CLEARING"


async def test_uuid_kill_reports_after_its_reply(fake: FakeFreeSWITCH) -> None:
    fake.add_destination("user/1000")
    async with connect(fake) as client:
        await client.api(f"originate {{origination_uuid={A}}}user/1000 &park")
        await client.command("event plain CHANNEL_HANGUP API")
        await client.send(f"api uuid_kill {A} CALL_REJECTED\n\n".encode())
        messages = [await client.read() for _ in range(3)]
        assert [type(message).__name__ for message in messages] == [
            "ApiResponse",
            "Event",
            "Event",
        ]
        hangup, api = messages[1], messages[2]
        assert isinstance(hangup, Event)
        assert isinstance(api, Event)
        assert (hangup.name, hangup.hangup_cause) == ("CHANNEL_HANGUP", "CALL_REJECTED")
        assert (api.name, api["API-Command"], api["API-Command-Argument"]) == (
            "API",
            "uuid_kill",
            f"{A} CALL_REJECTED",
        )
        assert await client.api(f"uuid_kill {A}") == "-ERR No such channel!\n"
    assert fake.channel_history[-1].variables["hangup_cause_q850"] == "21"


async def test_busy_destination(fake: FakeFreeSWITCH) -> None:
    fake.add_destination("user/1001", Destination(reject_cause="USER_BUSY"))
    async with connect(fake) as client:
        await client.command("event plain ALL")
        assert await client.api(f"originate {{origination_uuid={A}}}user/1001 &park") == (
            "-ERR USER_BUSY\n"
        )
        events = of_channel(await client.events_until("CHANNEL_DESTROY", uuid=A), A)
        assert "CHANNEL_ANSWER" not in names(events)
        assert names(events)[-5:] == [
            "CHANNEL_STATE",
            "CHANNEL_CALLSTATE",
            "CHANNEL_STATE",
            "CHANNEL_HANGUP_COMPLETE",
            "CHANNEL_DESTROY",
        ]
        assert events[-1].variable("hangup_cause_q850") == "17"
        assert events[-1].variable("billsec") == "0"


async def test_unanswered_call_times_out(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1002", Destination(answer_after=None))
    async with connect(fake) as client:
        started = trio.current_time()
        assert await client.api("originate user/1002 &park") == "-ERR NO_ANSWER\n"
        assert trio.current_time() - started == pytest.approx(60)
        started = trio.current_time()
        reply = await client.api("originate {originate_timeout=5}user/1002 &park")
        assert reply == "-ERR NO_ANSWER\n"
        assert trio.current_time() - started == pytest.approx(5)
    assert [channel.hangup_cause for channel in fake.channel_history] == ["NO_ANSWER"] * 2


async def test_unknown_destination(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        assert await client.api("originate user/9999 &park") == "-ERR NO_ROUTE_DESTINATION\n"
        assert await client.api("originate") == (
            "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] "
            "[<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
        )
    assert fake.channel_history == ()


async def test_bgapi_originate_reports_in_background_job(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=1))
    fake.add_destination("user/busy", Destination(reject_cause="CALL_REJECTED"))
    async with connect(fake) as client:
        await client.command("event plain BACKGROUND_JOB")
        argument = f"{{origination_uuid={A}}}user/1000 &park"
        reply = await client.command(f"bgapi originate {argument}")
        job = await client.next_event()
        assert job.job_uuid == reply.job_uuid
        assert (job["Job-Command"], job["Job-Command-Arg"], job.body) == (
            "originate",
            argument,
            f"+OK {A}\n",
        )
        reply = await client.command("bgapi originate user/busy &park")
        job = await client.next_event()
        assert job.body == "-ERR CALL_REJECTED\n"


async def test_early_media_completes_the_originate_before_the_answer(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1003", Destination(answer_after=3, early_media=True))
    async with connect(fake) as client:
        await client.command("event plain ALL")
        started = trio.current_time()
        assert await client.api(f"originate {{origination_uuid={A}}}user/1003 &park") == (
            f"+OK {A}\n"
        )
        assert trio.current_time() == started
        events = of_channel(await client.events_until("CHANNEL_CALLSTATE", uuid=A), A)
        events += of_channel(await client.events_until("CHANNEL_CALLSTATE", uuid=A), A)
        events += of_channel(await client.events_until("CHANNEL_PARK", uuid=A), A)
        events += of_channel(await client.events_until("CHANNEL_CALLSTATE", uuid=A), A)
        assert names(events)[len(ANSWERED_LEG) :] == [
            "CHANNEL_PROGRESS",
            "CHANNEL_CALLSTATE",
            "CHANNEL_PROGRESS_MEDIA",
            "CHANNEL_CALLSTATE",
            "CALL_UPDATE",
            "CHANNEL_STATE",
            "CHANNEL_EXECUTE",
            "CHANNEL_PARK",
            "CHANNEL_ANSWER",
            "CHANNEL_CALLSTATE",
        ]
        assert [e.answer_state for e in events if e.name == "CHANNEL_CALLSTATE"] == [
            "ringing",
            "early",
            "answered",
        ]
        assert trio.current_time() - started == pytest.approx(3)


async def test_far_end_hangs_up(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1004", Destination(answer_after=1, hangup_after=30))
    async with connect(fake) as client:
        await client.command("event plain CHANNEL_HANGUP_COMPLETE")
        await client.api(f"originate {{origination_uuid={A}}}user/1004 &park")
        complete = await client.next_event()
        assert complete.hangup_cause == "NORMAL_CLEARING"
        assert complete.variable("billsec") == "30"
        assert complete.variable("billmsec") == "30000"
        assert complete.variable("duration") == "31"


async def test_fake_hangup_waits_for_destroy(fake: FakeFreeSWITCH) -> None:
    fake.add_destination("user/1005")
    async with connect(fake) as client:
        await client.api(f"originate {{origination_uuid={A}}}user/1005 &park")
        await fake.hangup(A, cause="ORIGINATOR_CANCEL")
        assert A not in fake.channels
        channel = fake.channel_history[-1]
        assert channel.ended
        assert channel.variables["hangup_cause_q850"] == "487"
        with pytest.raises(KeyError):
            await fake.hangup(A)


async def test_applications_run_then_the_call_ends(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1006")
    async with connect(fake) as client:
        await client.command("event plain CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP")
        await client.api(f"originate {{origination_uuid={A}}}user/1006 &sleep(1500)")
        execute, complete, hangup = [await client.next_event() for _ in range(3)]
        assert (execute.application, execute["Application-Data"]) == ("sleep", "1500")
        assert complete.name == "CHANNEL_EXECUTE_COMPLETE"
        assert complete["Application-Response"] == "_none_"
        assert complete.application_uuid == execute.application_uuid
        assert (hangup.name, hangup.hangup_cause) == ("CHANNEL_HANGUP", "NORMAL_CLEARING")


async def test_channel_apis(fake: FakeFreeSWITCH) -> None:
    fake.add_destination("user/1007")
    async with connect(fake) as client:
        assert await client.api("show channels") == "\n0 total.\n"
        assert await client.api("show channels as json") == '{"row_count": 0}\n'
        await client.api(
            f"originate {{origination_uuid={A},origination_caller_id_name=Alice}}user/1007 &park"
        )
        assert await client.api(f"uuid_exists {A}") == "true"
        assert await client.api("uuid_exists nope") == "false"
        assert await client.api(f"uuid_getvar {A} origination_caller_id_name") == "Alice"
        assert await client.api(f"uuid_getvar {A} nothing") == "_undef_"
        assert await client.api(f"uuid_setvar {A} colour deep blue") == "+OK\n"
        assert await client.api(f"uuid_getvar {A} colour") == "deep blue"
        assert await client.api(f"uuid_setvar {A} colour") == "+OK\n"
        assert await client.api(f"uuid_getvar {A} colour") == "_undef_"
        assert await client.api("uuid_getvar nope x") == "-ERR No such channel!\n"
        dump = await client.api(f"uuid_dump {A}")
        assert dump.startswith("Event-Name: CHANNEL_DATA\n")
        assert f"Unique-ID: {A}\n" in dump
        assert "Channel-State: CS_EXECUTE\n" in dump
        assert "variable_origination_caller_id_name: Alice\n" in dump
        table = (await client.api("show channels")).split("\n")
        assert table[0].startswith("uuid,direction,created,created_epoch,name,state,")
        assert table[1].startswith(f"{A},outbound,")
        assert table[-2:] == ["1 total.", ""]
        document = json.loads(await client.api("show channels as json"))
        assert document["row_count"] == 1
        assert document["rows"][0]["uuid"] == A
        assert document["rows"][0]["callstate"] == "ACTIVE"
        assert document["rows"][0]["application"] == "park"


async def test_builtin_apis(fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock) -> None:
    async with connect(fake) as client:
        assert await client.api("version") == "FreeSWITCH Version 1.11.3-dev~64bit ( 64bit)\n"
        assert await client.api("hostname") == "fake-freeswitch"
        assert await client.api("global_getvar hostname") == "fake-freeswitch"
        assert await client.api("echo hello world") == "hello world"
        assert await client.api("reloadxml") == "+OK [Success]\n"
        started = trio.current_time()
        assert await client.api("msleep 2500") == "+OK"
        assert trio.current_time() - started == pytest.approx(2.5)
        assert await client.api("uptime") == "2\n"
        assert await client.api("echo") == "-ERR no reply\n"
        assert await client.api("nosuchcommand arg1") == "-ERR nosuchcommand Command not found!\n"


async def test_sendmsg_hangup(fake: FakeFreeSWITCH) -> None:
    fake.add_destination("user/1008")
    async with connect(fake) as client:
        await client.api(f"originate {{origination_uuid={A}}}user/1008 &park")
        channel = fake.channels[A]
        await client.send(
            f"sendmsg {A}\ncall-command: hangup\nhangup-cause: USER_BUSY\n\n".encode()
        )
        reply = await client.read_reply()
        assert isinstance(reply, CommandReply)
        assert reply.reply_text == "+OK"
        await channel.wait_ended()
        assert channel.hangup_cause == "USER_BUSY"


async def test_leg_is_in_cs_execute_before_the_originate_reports(fake: FakeFreeSWITCH) -> None:
    # originate_function moves the leg to CS_EXECUTE before it replies, so a
    # client that saw the BACKGROUND_JOB has already seen that state change.
    fake.add_destination("user/1009")
    async with connect(fake) as client:
        await client.command("event plain CHANNEL_STATE BACKGROUND_JOB")
        await client.command(f"bgapi originate {{origination_uuid={A}}}user/1009 &park")
        events = await client.events_until("BACKGROUND_JOB")
        assert [event.channel_state for event in events if event.name == "CHANNEL_STATE"] == [
            "CS_INIT",
            "CS_ROUTING",
            "CS_CONSUME_MEDIA",
            "CS_EXECUTE",
        ]
