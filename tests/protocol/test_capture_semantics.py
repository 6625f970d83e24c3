"""What the parsed captures mean: bodies, decoded values, reply texts."""

from __future__ import annotations

import re
from typing import TypeVar

from genesis_trio.protocol import (
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    Event,
    LogData,
    Message,
)

from ._captures import capture_events, capture_messages, sent_bytes

GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


T = TypeVar("T")


def _of_type(messages: tuple[Message, ...], kind: type[T]) -> list[T]:
    return [message for message in messages if isinstance(message, kind)]


def _sent_header_values(name: str, header: str) -> list[str]:
    """Values of a header line in what the capture script sent (NAME.sent.bin)."""
    sent = sent_bytes(name).decode()
    return re.findall(rf"^{re.escape(header)}: (.*)$", sent, flags=re.MULTILINE)


# --- sendevent -------------------------------------------------------------------


def test_sendevent_plain_event_carries_body_and_decoded_headers() -> None:
    plain = capture_events("inbound_sendevent_custom")[0]
    assert plain.name == "CUSTOM"
    assert plain.subclass == "esl::test"
    assert plain["Command"] == "sendevent CUSTOM"
    assert plain["X-Test-Header"] == "value with spaces & symbols=%"
    assert plain.body == "hello from sendevent\nsecond line\n"
    # The sender's Content-Length stays a header, and FreeSWITCH appends its own.
    assert plain.get_all("Content-Length") == ["33", "33"]
    assert plain.headers.get_all("Content-Length") == ["33", "33"]
    assert plain["Content-Length"] == "33"
    assert plain["Event-UUID"] == "88ba9e1f-83ad-4e7e-aa42-ee3681018c2f"


def test_sendevent_reply_names_the_event_uuid() -> None:
    replies = _of_type(capture_messages("inbound_sendevent_custom"), CommandReply)
    texts = [reply.reply_text for reply in replies]
    assert texts == [
        "+OK accepted",
        "+OK event listener enabled plain",
        "+OK 88ba9e1f-83ad-4e7e-aa42-ee3681018c2f",
        "+OK no longer listening for events",
        "+OK event listener enabled json",
        "+OK 1e6a80a3-4320-4f2d-a30c-03a2b1d71e9c",
        "+OK bye",
    ]
    assert all(reply.ok for reply in replies)
    events = capture_events("inbound_sendevent_custom")
    assert [event["Event-UUID"] for event in events] == [texts[2][4:], texts[5][4:]]


def test_sendevent_json_event_without_body() -> None:
    json_event = capture_events("inbound_sendevent_custom")[1]
    assert json_event.name == "CUSTOM"
    assert json_event.subclass == "esl::test"
    assert json_event["X-Test-Header"] == "json variant"
    assert json_event["FreeSWITCH-IPv6"] == "fd00::2"
    assert json_event.body is None
    assert "Content-Length" not in json_event


# --- bgapi / BACKGROUND_JOB ----------------------------------------------------------


def test_background_job_events_carry_their_bodies() -> None:
    messages = capture_messages("inbound_bgapi_background_job")
    replies = _of_type(messages, CommandReply)
    bgapi_replies = replies[2:5]
    job_uuids = [reply.job_uuid for reply in bgapi_replies]
    assert [reply.reply_text for reply in bgapi_replies] == [
        f"+OK Job-UUID: {u}" for u in job_uuids
    ]
    # The second bgapi chose its own Job-UUID; the switch echoes it.
    assert job_uuids[1] == _sent_header_values("inbound_bgapi_background_job", "Job-UUID")[0]

    jobs = capture_events("inbound_bgapi_background_job")
    assert [job.name for job in jobs] == ["BACKGROUND_JOB"] * 3
    assert [job.job_uuid for job in jobs] == job_uuids
    assert [job["Job-Command"] for job in jobs] == ["status", "version", "nosuchcommand"]
    status, version, failed = (job.body for job in jobs)
    assert status is not None
    assert version is not None
    assert status.startswith("UP 0 years, 0 days, 0 hours, 0 minutes, 4 seconds")
    assert status.endswith("Current Stack Size/Max 240K/8192K\n")
    assert len(status.encode()) == int(jobs[0]["Content-Length"]) == 332
    assert version == "FreeSWITCH Version 1.11.3-dev~64bit ( 64bit)\n"
    assert failed == "-ERR nosuchcommand Command not found!\n"


# --- outbound connect --------------------------------------------------------------


def test_outbound_connect_reply_carries_the_channel_data() -> None:
    connect = capture_messages("outbound_session_plain")[0]
    assert isinstance(connect, CommandReply)
    assert connect.reply_text == "+OK"
    assert connect.ok
    assert connect.headers["Reply-Text"] == "+OK\n"  # URL-decoded "%2BOK%0A"
    assert connect.headers["Content-Type"] == "command/reply"
    assert connect.headers["Socket-Mode"] == "async"
    assert connect.headers["Control"] == "full"
    assert list(connect.headers)[-4:] == ["Content-Type", "Reply-Text", "Socket-Mode", "Control"]
    channel = connect.event
    assert channel is not None
    assert next(iter(channel)) == "Event-Name"
    assert channel.name == "CHANNEL_DATA"
    assert channel.unique_id == "737e7aab-770e-4948-bd73-a8a2c25a23c7"
    assert channel["Channel-Name"] == "loopback/9000-b"
    assert channel["Caller-Destination-Number"] == "9000"
    assert channel["Caller-Callee-ID-Name"] == "Outbound Call"
    assert channel.variable("current_application_data") == "127.0.0.1:8084 async full"
    assert channel["Socket-Mode"] == "async"
    assert channel["Control"] == "full"
    assert channel.body is None
    assert len(channel) > 100


def test_outbound_json_connect_reply_is_decoded_the_same_way() -> None:
    connect = capture_messages("outbound_session_json")[0]
    assert isinstance(connect, CommandReply)
    assert connect.event is not None
    assert connect.event.name == "CHANNEL_DATA"
    assert connect.reply_text == "+OK"
    assert (connect.event["Socket-Mode"], connect.event["Control"]) == ("async", "full")


def test_outbound_session_replies_and_execute_completions() -> None:
    for name, linger_reply in (
        ("outbound_session_plain", "+OK will linger"),
        ("outbound_session_json", "+OK will linger 2 seconds"),
    ):
        messages = capture_messages(name)
        replies = _of_type(messages, CommandReply)
        assert [reply.reply_text for reply in replies[1:6]] == [
            "+OK Events Enabled",
            linger_reply,
            "+OK",
            "+OK",
            "+OK",
        ]
        assert [api.body for api in _of_type(messages, ApiResponse)] == ["9000"]
        sent_uuids = _sent_header_values(name, "Event-UUID")
        completions = [
            event for event in capture_events(name) if event.name == "CHANNEL_EXECUTE_COMPLETE"
        ]
        by_uuid = {event.application_uuid: event.application for event in completions}
        assert by_uuid[sent_uuids[0]] == "answer"
        assert by_uuid[sent_uuids[1]] == "playback"
        assert capture_events(name)[-1].name == "CHANNEL_HANGUP_COMPLETE"


# --- disconnect notices --------------------------------------------------------------


def test_outbound_linger_then_disconnect_notices() -> None:
    for name, linger_time in (("outbound_session_plain", "-1"), ("outbound_session_json", "2")):
        linger, disconnect = _of_type(capture_messages(name), DisconnectNotice)
        assert linger.disposition == "linger"
        assert linger.linger
        assert linger.headers["Linger-Time"] == linger_time
        assert linger.headers["Channel-Name"] == "loopback/9000-b"
        assert linger.body == ""
        assert disconnect.disposition == "disconnect"
        assert not disconnect.linger
        assert disconnect.body == GOODBYE
        session = linger.headers["Controlled-Session-UUID"]
        assert disconnect.headers["Controlled-Session-UUID"] == session
        assert capture_messages(name)[-1] is disconnect


def test_inbound_sessions_end_with_bye_and_a_bare_disconnect_notice() -> None:
    for name in ("inbound_exit_disconnect_notice", "inbound_auth_ok_api_status", "inbound_log"):
        *_, bye, notice = capture_messages(name)
        assert isinstance(bye, CommandReply)
        assert bye.reply_text == "+OK bye"
        assert isinstance(notice, DisconnectNotice)
        assert notice.body == GOODBYE
        assert notice.disposition is None
        assert not notice.linger


# --- log/data ----------------------------------------------------------------------


def test_log_data_frames() -> None:
    logs = _of_type(capture_messages("inbound_log"), LogData)
    assert [log.level for log in logs] == [6, 6, 6]
    assert [log.headers["Log-File"] for log in logs] == [
        "switch_xml.c",
        "switch_time.c",
        "mod_commands.c",
    ]
    assert [log.headers["Log-Func"] for log in logs] == [
        "preprocess_glob",
        "switch_load_timezones",
        "log_function",
    ]
    assert [log.headers["Log-Line"] for log in logs] == ["1436", "1437", "7247"]
    assert [log.headers["Text-Channel"] for log in logs] == ["0", "0", "3"]
    # "User-Data: " (nothing after the space) is an empty value, not a parse error.
    assert all(log.headers["User-Data"] == "" for log in logs)
    assert logs[2].body == (
        "2026-11-25 03:23:55.155153 99.40% [INFO] mod_commands.c:7247 esl capture test line\n"
    )
    assert all(len(log.body.encode()) == int(log.headers["Content-Length"]) for log in logs)


# --- errors ------------------------------------------------------------------------


def test_api_errors_keep_their_bodies() -> None:
    messages = capture_messages("inbound_errors")
    responses = _of_type(messages, ApiResponse)
    assert [response.body for response in responses] == [
        "-ERR nosuchcommand Command not found!\n",
        "-ERR No such channel!\n",
        "-ERR NO_ROUTE_DESTINATION\n",
    ]
    assert not any(response.ok for response in responses)
    replies = _of_type(messages, CommandReply)
    assert [(reply.reply_text, reply.ok) for reply in replies] == [
        ("+OK accepted", True),
        ("-ERR command not found", False),
        ("+OK event listener enabled plain", True),
        ("-ERR command not found", False),
        ("+OK bye", True),
    ]


def test_api_success_bodies() -> None:
    responses = _of_type(capture_messages("inbound_auth_ok_api_status"), ApiResponse)
    assert all(response.ok for response in responses)
    assert responses[0].body.startswith("UP 0 years")
    assert responses[1].body == "FreeSWITCH Version 1.11.3-dev~64bit ( 64bit)\n"


def test_wrong_password() -> None:
    greeting, reply, notice = capture_messages("inbound_auth_wrong_password")
    assert isinstance(greeting, AuthRequest)
    assert isinstance(reply, CommandReply)
    assert reply.reply_text == "-ERR invalid"
    assert not reply.ok
    assert reply.event is None
    assert isinstance(notice, DisconnectNotice)
    assert notice.body == GOODBYE


# --- lifecycle -------------------------------------------------------------------


def test_plain_lifecycle_event_counts_match_the_readme() -> None:
    events = capture_events("inbound_plain_lifecycle")
    counts: dict[str, int] = {}
    for event in events:
        assert event.name is not None
        counts[event.name] = counts.get(event.name, 0) + 1
    readme_counts = {
        "CHANNEL_CREATE": 4,
        "CHANNEL_PROGRESS": 2,
        "CHANNEL_PROGRESS_MEDIA": 2,
        "CHANNEL_ANSWER": 4,
        "CHANNEL_EXECUTE": 14,
        "CHANNEL_EXECUTE_COMPLETE": 12,
        "CHANNEL_PARK": 4,
        "CHANNEL_UNPARK": 4,
        "CHANNEL_BRIDGE": 1,
        "CHANNEL_UNBRIDGE": 1,
        "CHANNEL_HANGUP": 4,
        "CHANNEL_HANGUP_COMPLETE": 4,
        "CHANNEL_DESTROY": 4,
        "BACKGROUND_JOB": 2,
    }
    assert {name: counts[name] for name in readme_counts} == readme_counts


def test_plain_values_are_url_decoded() -> None:
    event = next(
        event
        for event in capture_events("inbound_plain_lifecycle")
        if event.name == "CHANNEL_EXECUTE" and event.application == "playback"
    )
    assert event["Event-Date-GMT"].endswith(" GMT")
    assert event["FreeSWITCH-IPv6"] == "fd00::2"
    assert event["Application-Data"].startswith("tone_stream://%(")
    assert isinstance(event, Event)
    assert event.sequence is not None
    assert event.sequence > 0
