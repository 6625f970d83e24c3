"""Event subscriptions, formats and filters over a real socket."""

from __future__ import annotations

import pytest

from genesis_trio import Inbound
from genesis_trio.protocol import CommandReply, Event
from genesis_trio.testing import FakeFreeSWITCH

from ._raw_client import connect

pytestmark = pytest.mark.trio


@pytest.mark.parametrize("event_format", ["plain", "json", "xml"])
async def test_each_format_delivers_the_same_event(fake: FakeFreeSWITCH, event_format: str) -> None:
    async with connect(fake) as client:
        reply = await client.command(f"event {event_format} CUSTOM my::thing")
        assert reply.reply_text == f"+OK event listener enabled {event_format}"
        event = fake.build_event(
            "CUSTOM",
            {"Weird-Value": "a b&c=%d:{x}<y>", "Unique-ID": "u-1"},
            body="line one\nline two\n",
            subclass="my::thing",
        )
        await fake.emit(event)
        received = await client.next_event()
        assert received.body == event.body
        assert {k: v for k, v in received.items() if k != "Content-Length"} == dict(event)
        assert received["Content-Length"] == "18"
        content_type = f"text/event-{event_format}".encode()
        assert b"Content-Type: " + content_type + b"\n\n" in client.received


async def test_only_subscribed_events_arrive(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.command("event plain CHANNEL_ANSWER CUSTOM wanted::one")
        for name, subclass in [
            ("CHANNEL_CREATE", None),
            ("CUSTOM", "other::one"),
            ("CUSTOM", "wanted::one"),
            ("CHANNEL_ANSWER", None),
        ]:
            await fake.emit(fake.build_event(name, subclass=subclass))
        first = await client.next_event()
        second = await client.next_event()
        assert (first.name, first.subclass) == ("CUSTOM", "wanted::one")
        assert second.name == "CHANNEL_ANSWER"


async def test_event_requires_a_known_name(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        reply = await client.command("event json NOT_AN_EVENT")
        assert reply.reply_text == "-ERR no keywords supplied"
        # The format still changed, as FreeSWITCH does.
        reply = await client.command("event CHANNEL_CREATE")
        assert reply.reply_text == "+OK event listener enabled json"


async def test_nixevent_and_noevents(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.command("event plain ALL")
        assert (await client.command("nixevent CHANNEL_CREATE")).reply_text == "+OK events nixed"
        await fake.emit(fake.build_event("CHANNEL_CREATE"))
        await fake.emit(fake.build_event("HEARTBEAT"))
        assert (await client.next_event()).name == "HEARTBEAT"
        reply = await client.command("noevents")
        assert reply.reply_text == "+OK no longer listening for events"
        reply = await client.command("noevents")
        assert reply.reply_text == "-ERR not listening for events"
        await fake.emit(fake.build_event("HEARTBEAT"))
        assert await client.api("echo still-here") == "still-here"
        assert client.pending_events == []


async def test_filters_select_and_veto(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.command("event plain ALL")
        reply = await client.command("filter Unique-ID one")
        assert reply.reply_text == "+OK filter added. [Unique-ID]=[one]"
        await client.command("filter Unique-ID two")
        await client.command("filter Event-Name -CHANNEL_STATE")
        for uuid, name in [
            ("zero", "CHANNEL_ANSWER"),
            ("one", "CHANNEL_STATE"),
            ("one", "CHANNEL_ANSWER"),
            ("two", "CHANNEL_ANSWER"),
        ]:
            await fake.emit(fake.build_event(name, {"Unique-ID": uuid}))
        assert [(await client.next_event()).unique_id for _ in range(2)] == ["one", "two"]
        reply = await client.command("filter delete Unique-ID two")
        assert reply.reply_text == "+OK filter deleted. [Unique-ID][two]"
        await fake.emit(fake.build_event("CHANNEL_ANSWER", {"Unique-ID": "two"}))
        await fake.emit(fake.build_event("CHANNEL_ANSWER", {"Unique-ID": "one"}))
        assert (await client.next_event()).unique_id == "one"
        await client.command("filter delete all")
        await fake.emit(fake.build_event("CHANNEL_ANSWER", {"Unique-ID": "two"}))
        assert (await client.next_event()).unique_id == "two"
        reply = await client.command("filter Unique-ID")
        assert reply.reply_text == "-ERR invalid syntax"


async def test_regex_filter(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.command("event plain ALL")
        await client.command("filter Caller-Caller-ID-Number /^10[0-9]{2}$/")
        for number in ("2000", "1001"):
            await fake.emit(fake.build_event("CHANNEL_CREATE", {"Caller-Caller-ID-Number": number}))
        assert (await client.next_event())["Caller-Caller-ID-Number"] == "1001"


async def test_myevents_follows_one_channel(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        reply = await client.command("myevents wanted-uuid")
        assert reply.reply_text == "+OK Events Enabled"
        await fake.emit(fake.build_event("CHANNEL_ANSWER", {"Unique-ID": "other"}))
        await fake.emit(fake.build_event("CHANNEL_ANSWER", {"Unique-ID": "wanted-uuid"}))
        assert (await client.next_event()).unique_id == "wanted-uuid"
        reply = await client.command("myevents missing-uuid json")
        assert reply.reply_text == "-ERR invalid uuid"


async def test_commands_before_auth(fake: FakeFreeSWITCH) -> None:
    async with connect(fake, password=None) as client:
        reply = await client.command("api status")
        assert reply.reply_text == "-ERR command not found"
        reply = await client.command("event plain ALL")
        assert reply.reply_text == "-ERR command not found"
        await fake.emit(fake.build_event("HEARTBEAT"))
        assert (await client.command("auth ClueCon")).reply_text == "+OK accepted"
        assert await client.api("echo ok") == "ok"
        assert client.pending_events == []


async def test_session_only_commands_fail_on_inbound(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        replies = [
            await client.command(line) for line in ("linger", "nolinger", "divert_events on")
        ]
        assert [reply.reply_text for reply in replies] == [
            "-ERR not controlling a session",
            "-ERR not controlling a session",
            "-ERR not controlling a session.",
        ]
        assert (await client.command("nolog")).reply_text == "-ERR not loging"
        reply = await client.command("sendmsg no-such-uuid\ncall-command: hangup")
        assert reply.reply_text == "-ERR invalid session id [no-such-uuid]"


async def test_events_wait_for_the_reply_of_a_running_command(fake: FakeFreeSWITCH) -> None:
    # mod_event_socket writes nothing between a command and its reply.
    fake.register_api("fire", lambda argument: _fire_then_reply(fake))
    async with connect(fake) as client:
        await client.command("event plain HEARTBEAT")
        await client.send(b"api fire\n\n")
        first = await client.read()
        second = await client.read()
        assert not isinstance(first, Event)
        assert not isinstance(first, CommandReply)
        assert isinstance(second, Event)


async def _fire_then_reply(fake: FakeFreeSWITCH) -> str:
    await fake.emit(fake.build_event("HEARTBEAT"))
    return "+OK fired\n"


async def test_a_percent_escape_in_a_value_survives_only_in_json_as_on_the_real_switch(
    fake: FakeFreeSWITCH,
) -> None:
    """The fake's half of tests/real/test_inbound.py's test of the same name."""
    subclass, value = "genesis::percent", "100% off %41"
    seen: dict[str, str | None] = {}
    async with Inbound(fake.host, fake.port) as sender:
        for event_format in ("plain", "json", "xml"):
            async with Inbound(fake.host, fake.port) as listener:
                await listener.events("CUSTOM", subclass, event_format=event_format)
                async with listener.subscribe(subclass, request=False) as events:
                    await sender.sendevent("CUSTOM", {"Event-Subclass": subclass, "X-Value": value})
                    seen[event_format] = (await events.receive()).get("X-Value")
    assert seen == {"json": value, "plain": "100% off A", "xml": "100% off A"}
