"""The fake's bytes against the sessions recorded from a real FreeSWITCH 1.11."""

from __future__ import annotations

import re

import anyio
import pytest

from genesis_trio.protocol import (
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    Event,
    LogData,
    Message,
)
from genesis_trio.testing import FakeFreeSWITCH

from ._raw_client import RawClient, capture_bytes, connect, parse_all

pytestmark = pytest.mark.trio

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sent_commands(name: str) -> list[bytes]:
    """The commands of a ``.sent.bin`` capture, each with its terminator (and body)."""
    data = capture_bytes(f"{name}.sent.bin")
    commands: list[bytes] = []
    while data:
        end = data.index(b"\n\n") + 2
        head = data[:end]
        match = re.search(rb"Content-Length: (\d+)", head)
        if match:
            end += int(match.group(1))
        commands.append(data[:end])
        data = data[end:]
    return commands


async def replay_whole(fake: FakeFreeSWITCH, name: str) -> bytes:
    """Send a recorded session in one write; return every byte the fake sent back."""
    stream = await anyio.connect_tcp(fake.host, fake.port)
    async with stream:
        client = RawClient(stream)
        await client.send(capture_bytes(f"{name}.sent.bin"))
        await client.read_until_closed()
        return bytes(client.received)


async def test_wrong_password_bytes_are_identical(fake: FakeFreeSWITCH) -> None:
    received = await replay_whole(fake, "inbound_auth_wrong_password")
    assert received == capture_bytes("inbound_auth_wrong_password.bin")


async def test_exit_bytes_are_identical(fake: FakeFreeSWITCH) -> None:
    received = await replay_whole(fake, "inbound_exit_disconnect_notice")
    assert received == capture_bytes("inbound_exit_disconnect_notice.bin")


async def test_error_replies_are_identical(fake: FakeFreeSWITCH) -> None:
    received = await replay_whole(fake, "inbound_errors")
    assert received == capture_bytes("inbound_errors.bin")


async def test_api_status_and_version_match_the_capture(fake: FakeFreeSWITCH) -> None:
    recorded = parse_all(capture_bytes("inbound_auth_ok_api_status.bin"))
    received = await replay_whole(fake, "inbound_auth_ok_api_status")
    ours = parse_all(received)
    assert [type(message) for message in ours] == [type(message) for message in recorded]
    assert received.startswith(b"Content-Type: auth/request\n\nContent-Type: command/reply\n")
    status, version = (message for message in ours if isinstance(message, ApiResponse))
    recorded_version = [m for m in recorded if isinstance(m, ApiResponse)][1]
    assert version.body == recorded_version.body
    assert re.fullmatch(
        r"UP 0 years, 0 days, 0 hours, 0 minutes, \d+ seconds, \d+ milliseconds, "
        r"\d+ microseconds\nFreeSWITCH \(Version 1\.11\.3-dev  64bit\) is ready\n"
        r"0 session\(s\) since startup\n(.*\n){5}",
        status.body,
    )
    exit_capture = capture_bytes("inbound_exit_disconnect_notice.bin")
    goodbye = exit_capture[
        exit_capture.index(b"Content-Type: command/reply\nReply-Text: +OK bye") :
    ]
    assert received.endswith(goodbye)


def header_names(event: Event) -> list[str]:
    return [name for name, _ in event.headers.multi_items()]


async def replay_stepwise(
    fake: FakeFreeSWITCH, name: str, *, wait_for_events: dict[int, int]
) -> list[Message]:
    """Send a recorded session command by command; after command ``i`` also
    wait for ``wait_for_events[i]`` events. Returns every message received."""
    stream = await anyio.connect_tcp(fake.host, fake.port)
    async with stream:
        client = RawClient(stream)
        messages: list[Message] = [await client.read()]
        for index, command in enumerate(sent_commands(name)):
            await client.send(command)
            messages.append(await client.read())
            for _ in range(wait_for_events.get(index, 0)):
                messages.append(await client.read())
        messages += await client.read_until_closed()
        return messages


async def test_bgapi_flow_matches_the_capture(fake: FakeFreeSWITCH) -> None:
    recorded = parse_all(capture_bytes("inbound_bgapi_background_job.bin"))
    ours = await replay_stepwise(
        fake, "inbound_bgapi_background_job", wait_for_events={2: 1, 3: 1, 4: 1}
    )
    assert [type(message) for message in ours] == [type(message) for message in recorded]
    for mine, theirs in zip(ours, recorded, strict=True):
        if isinstance(mine, CommandReply):
            assert isinstance(theirs, CommandReply)
            assert UUID.sub("U", mine.reply_text) == UUID.sub("U", theirs.reply_text)
            assert list(mine.headers) == list(theirs.headers)
        if isinstance(mine, Event):
            assert isinstance(theirs, Event)
            assert header_names(mine) == header_names(theirs)
            for stable in ("Event-Name", "Event-Calling-File", "Event-Calling-Function"):
                assert mine[stable] == theirs[stable]
            assert mine["Job-Command"] == theirs["Job-Command"]
            if mine["Job-Command"] != "status":
                assert mine.body == theirs.body
    replies = [m for m in ours if isinstance(m, CommandReply) and m.job_uuid]
    jobs = [m for m in ours if isinstance(m, Event)]
    assert [reply.job_uuid for reply in replies] == [job.job_uuid for job in jobs]
    # The client chose the second job's uuid with a Job-UUID header; it is echoed.
    assert replies[1].job_uuid == "8e50ea59-5325-485e-9d51-9a14a0153c26"


async def test_log_frames_match_the_capture(fake: FakeFreeSWITCH) -> None:
    recorded = parse_all(capture_bytes("inbound_log.bin"))
    recorded_line = [m for m in recorded if isinstance(m, LogData)][-1]
    async with connect(fake) as client:
        assert (await client.command("log 7")).reply_text == "+OK log level 7 [7]"
        assert await client.api("reloadxml") == "+OK [Success]\n"
        assert await client.api("log INFO esl capture test line") == "+OK\n"
        line = await client.read()
        assert isinstance(line, LogData)
        assert list(line.headers) == list(recorded_line.headers)
        for name in ("Log-Level", "Text-Channel", "Log-File", "Log-Func", "Log-Line", "User-Data"):
            assert line.headers[name] == recorded_line.headers[name]
        assert line.body.endswith("[INFO] mod_commands.c:7247 esl capture test line\n")
        assert (await client.command("nolog")).reply_text == "+OK no longer logging"
        # A level filters what is sent: DEBUG lines do not reach a `log 3` listener.
        await client.command("log 3")
        fake.log("noise", level="DEBUG")
        fake.log("trouble", level="ERR")
        line = await client.read()
        assert isinstance(line, LogData)
        assert line.level == 3
        assert line.body.endswith("trouble\n")


async def test_sendevent_matches_the_capture(fake: FakeFreeSWITCH) -> None:
    recorded = parse_all(capture_bytes("inbound_sendevent_custom.bin"))
    ours = await replay_stepwise(fake, "inbound_sendevent_custom", wait_for_events={2: 1, 5: 1})
    assert [type(message) for message in ours] == [type(message) for message in recorded]
    recorded_events = [m for m in recorded if isinstance(m, Event)]
    our_events = [m for m in ours if isinstance(m, Event)]
    for mine, theirs in zip(our_events, recorded_events, strict=True):
        assert header_names(mine) == header_names(theirs)
        assert mine.body == theirs.body
        assert mine["X-Test-Header"] == theirs["X-Test-Header"]
        assert mine.subclass == "esl::test"
    replies = [m for m in ours if isinstance(m, CommandReply)]
    assert replies[2].reply_text == f"+OK {our_events[0]['Event-UUID']}"
    assert [r.reply_text for r in replies[3:5]] == [
        "+OK no longer listening for events",
        "+OK event listener enabled json",
    ]
    assert isinstance(ours[-1], DisconnectNotice)
    assert isinstance(ours[0], AuthRequest)


async def test_plain_sendevent_frame_keeps_both_content_lengths(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.command("event plain CUSTOM esl::test")
        body = b"hello from sendevent\nsecond line\n"
        await client.send(
            b"sendevent CUSTOM\nEvent-Subclass: esl::test\nContent-Length: 33\n\n" + body
        )
        await client.read_reply()
        event = await client.next_event()
        assert event.body == body.decode()
        assert event.get_all("Content-Length") == ["33", "33"]
        received = bytes(client.received)
        # The sender's Content-Length stays among the headers; the switch's closes them.
        assert b"\nContent-Length: 33\nEvent-UUID: " in received
        tail = f"Event-Sequence: {event.sequence}\nContent-Length: 33\n\n".encode() + body
        assert received.endswith(tail)
