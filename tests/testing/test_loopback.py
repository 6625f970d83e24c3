"""Loopback calls on the fake, as the real switch makes them (see tests/real/test_fake_fidelity).

The expected sequences below are what FreeSWITCH 1.11 (the test bundle) sent for the same
calls: two legs, ``-a`` (originated) and ``-b`` (running the extension), each following the
other's answer and hangup.
"""

from __future__ import annotations

import contextlib

import anyio
import anyio.abc
import pytest
import trio
import trio.testing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genesis_trio import Channel, ChannelState, Inbound, OriginateError
from genesis_trio.protocol import Event
from genesis_trio.testing import Destination, FakeFreeSWITCH

from ._raw_client import connect

pytestmark = pytest.mark.trio

A = "6a0e2b1c-1111-4c2d-9e3f-0a1b2c3d4e5f"


def labels(events: list[Event], uuid: str) -> list[str]:
    out = []
    for event in events:
        if event.unique_id != uuid:
            continue
        name = event.name or ""
        if name == "CHANNEL_STATE":
            name += f" {event.get('Channel-State')}"
        elif name == "CHANNEL_CALLSTATE":
            name += f" {event.get('Channel-Call-State')}"
        elif name.startswith("CHANNEL_EXECUTE"):
            name += f" {event.get('Application')}"
        out.append(name)
    return out


# What the real switch sent for `bgapi originate {origination_uuid=...}loopback/9002/default
# &park`, then `uuid_kill` of the a-leg.
REAL_9002_A = [
    "CHANNEL_UUID", "CHANNEL_OUTGOING", "CHANNEL_STATE CS_INIT", "CHANNEL_CREATE",
    "CHANNEL_ORIGINATE", "CHANNEL_STATE CS_ROUTING", "CHANNEL_STATE CS_CONSUME_MEDIA",
    "CHANNEL_ANSWER", "CHANNEL_CALLSTATE ACTIVE", "CALL_UPDATE", "CHANNEL_STATE CS_EXECUTE",
    "CHANNEL_EXECUTE park", "CHANNEL_PARK", "CHANNEL_HANGUP", "CHANNEL_UNPARK",
    "CHANNEL_EXECUTE_COMPLETE park", "CHANNEL_STATE CS_HANGUP", "CHANNEL_CALLSTATE HANGUP",
    "CHANNEL_STATE CS_REPORTING", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY",
    "CHANNEL_STATE CS_DESTROY",
]  # fmt: skip
REAL_9002_B = [
    "CODEC", "CODEC", "CHANNEL_STATE CS_INIT", "CHANNEL_CREATE", "CHANNEL_CALLSTATE RINGING",
    "CHANNEL_STATE CS_ROUTING", "CHANNEL_STATE CS_EXECUTE", "CHANNEL_EXECUTE answer",
    "CHANNEL_ANSWER", "CHANNEL_CALLSTATE ACTIVE", "CHANNEL_EXECUTE_COMPLETE answer",
    "CHANNEL_EXECUTE park", "CHANNEL_PARK", "CHANNEL_HANGUP", "CHANNEL_UNPARK",
    "CHANNEL_EXECUTE_COMPLETE park", "CHANNEL_STATE CS_HANGUP", "CHANNEL_CALLSTATE HANGUP",
    "CHANNEL_STATE CS_REPORTING", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY",
    "CHANNEL_STATE CS_DESTROY",
]  # fmt: skip


async def test_a_loopback_call_is_two_legs_like_the_real_one(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.command("event plain ALL")
        await client.command(f"bgapi originate {{origination_uuid={A}}}loopback/9002/default &park")
        events = await client.events_until("CHANNEL_PARK", uuid=A)
        a_leg, b_leg = fake.channel_history
        assert (a_leg.name, b_leg.name) == ("loopback/9002-a", "loopback/9002-b")
        assert [run.name for run in b_leg.applications] == ["answer", "park"]
        assert a_leg.variables["other_loopback_leg_uuid"] == b_leg.uuid
        assert b_leg.variables["other_loopback_leg_uuid"] == A
        assert await client.api(f"uuid_kill {A}") == "+OK\n"
        while not all(
            labels(events, uuid)[-1:] == ["CHANNEL_STATE CS_DESTROY"] for uuid in (A, b_leg.uuid)
        ):
            events.append(await client.next_event())
    # The CODEC events of the a-leg carry its first uuid (before origination_uuid).
    assert labels(events, A) == REAL_9002_A
    assert labels(events, b_leg.uuid) == REAL_9002_B
    create = next(e for e in events if e.name == "CHANNEL_CREATE" and e.unique_id == A)
    assert create.get("Channel-Read-Codec-Name") == "L16"
    assert create.get("Caller-Callee-ID-Number") == "default"
    assert "Caller-Caller-ID-Name" not in create  # nobody gave one
    assert (a_leg.hangup_cause, b_leg.hangup_cause) == ("NORMAL_CLEARING", "NORMAL_CLEARING")


async def test_busy_and_no_route_hang_up_both_legs(fake: FakeFreeSWITCH) -> None:
    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(OriginateError) as busy:
            await Channel.create(client, "loopback/9005/default")
        assert busy.value.cause == "USER_BUSY"
        reply = await client.api("originate loopback/no-such-extension/default &park", check=False)
        assert reply == "-ERR NO_ROUTE_DESTINATION\n"
    causes = [(leg.name, leg.hangup_cause) for leg in fake.channel_history]
    assert causes == [
        ("loopback/9005-a", "USER_BUSY"),
        ("loopback/9005-b", "USER_BUSY"),
        ("loopback/no-such-extension-a", "NO_ROUTE_DESTINATION"),
        ("loopback/no-such-extension-b", "NO_ROUTE_DESTINATION"),
    ]


async def test_without_the_dialplan_loopback_is_not_routed() -> None:
    async with (
        FakeFreeSWITCH(dialplan=False).running() as fake,
        Inbound(fake.host, fake.port) as client,
    ):
        reply = await client.api("originate loopback/9002/default &park", check=False)
    assert reply == "-ERR NO_ROUTE_DESTINATION\n"
    assert not fake.channel_history


async def test_uuid_send_dtmf_reaches_the_other_leg(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.command("event plain DTMF")
        reply = await client.api(f"originate {{origination_uuid={A}}}loopback/9007/default &park")
        assert reply == f"+OK {A}\n"
        assert await client.api(f"uuid_send_dtmf {A} 12#") == f"+OK {A} sent DTMF 12#.\n"
        digits = [await client.next_event() for _ in range(3)]
        b_leg = fake.channel_history[1]
        nobody = "00000000-0000-0000-0000-000000000000"
        assert await client.api(f"uuid_send_dtmf {nobody} 1") == "-ERR Cannot locate session!\n"
        await client.api(f"uuid_kill {A}")
        await b_leg.wait_ended()
    assert [(e.unique_id, e.get("DTMF-Digit"), e.get("DTMF-Source")) for e in digits] == [
        (b_leg.uuid, "1", "UNKNOWN"),
        (b_leg.uuid, "2", "UNKNOWN"),
        (b_leg.uuid, "#", "UNKNOWN"),
    ]
    assert b_leg.variables["digits_dialed"] == "12#"


async def test_a_hangup_during_a_playback_stops_it(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    async with connect(fake) as client:
        await client.command("event plain ALL")
        await client.api(f"originate {{origination_uuid={A}}}loopback/9001/default &park")
        b_leg = fake.channel_history[1]
        await client.events_until("PLAYBACK_START", uuid=b_leg.uuid)
        await client.api(f"uuid_kill {A}")
        events = await client.events_until("CHANNEL_EXECUTE_COMPLETE", uuid=b_leg.uuid)
    tail = labels(events, b_leg.uuid)
    assert tail[-3:] == ["CHANNEL_HANGUP", "PLAYBACK_STOP", "CHANNEL_EXECUTE_COMPLETE playback"]
    assert events[-1].get("Application-Response") == "PLAYBACK ERROR"


async def test_tones_play_as_long_as_on_freeswitch(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    # 9010: answer, tone_stream://%(300,0,440);loops=1, hang up.
    async with Inbound(fake.host, fake.port) as client:
        started = trio.current_time()
        channel = await Channel.create(client, "loopback/9010/default")
        await channel.wait(ChannelState.DESTROY, timeout=5)
    assert trio.current_time() - started == pytest.approx(0.3)
    assert fake.media_duration("tone_stream://%(500,100,440);loops=3") == pytest.approx(1.8)
    assert fake.media_duration("silence_stream://250") == pytest.approx(0.25)


async def test_uuid_getvar_falls_back_to_the_caller_profile(fake: FakeFreeSWITCH) -> None:
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, "loopback/9002/default")
        assert await client.api(f"uuid_getvar {channel.uuid} destination_number") == "9002"
        assert await client.api(f"uuid_getvar {channel.uuid} never_set") == "_undef_"
        assert await client.api("msleep 1") == "+OK"
        await channel.hangup()


def _late(extension: tuple[tuple[str, str], ...]) -> Destination:
    return Destination(applications=extension, create_late=True)


async def test_create_late_fires_the_answer_before_the_create(fake: FakeFreeSWITCH) -> None:
    fake.add_destination("loopback/9002/default", _late((("answer", ""), ("park", ""))))
    async with connect(fake) as client:
        await client.command("event plain CHANNEL_CREATE CHANNEL_ANSWER")
        await client.api(f"originate {{origination_uuid={A}}}loopback/9002/default &park")
        events = [await client.next_event() for _ in range(4)]
        await client.api(f"uuid_kill {A}")
    a_leg = [e.name for e in events if e.unique_id == A]
    assert a_leg == ["CHANNEL_ANSWER", "CHANNEL_CREATE"]
    with pytest.raises(ValueError, match="loopback"):
        fake.add_destination("user/1000", _late(()))


async def test_the_library_tolerates_an_answer_before_the_create(fake: FakeFreeSWITCH) -> None:
    """Channel.create, Channel.wait and the lifecycle spans, on the order a real switch
    produces for about one loopback call in 50."""
    fake.add_destination("loopback/9002/default", _late((("answer", ""), ("park", ""))))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with Inbound(fake.host, fake.port, tracer_provider=provider) as client:
        await client.events("ALL")
        with trio.fail_after(10):
            channel = await Channel.create(client, "loopback/9002/default")
            assert channel.answered
            await channel.wait("CHANNEL_ANSWER", timeout=5)
            await channel.wait("CHANNEL_CREATE", timeout=5)
            await channel.hangup()
            await channel.wait(ChannelState.DESTROY, timeout=5)
    assert channel.hangup_cause == "NORMAL_CLEARING"
    spans = exporter.get_finished_spans()
    create = next(s for s in spans if s.name == "channel.create")
    ours = [
        s
        for s in spans
        if s.name.startswith("freeswitch.channel.")
        and s.attributes
        and s.attributes.get("channel.uuid") == channel.uuid
    ]
    names = [s.name for s in ours]
    assert names.index("freeswitch.channel.answer") < names.index("freeswitch.channel.create")
    assert names.count("freeswitch.channel.create") == 1
    assert create.context is not None
    assert {s.context.trace_id for s in ours if s.context} == {create.context.trace_id}


async def test_a_lingering_socket_gets_the_linger_notice_before_the_goodbye(
    fake: FakeFreeSWITCH,
) -> None:
    """FreeSWITCH completes a hangup long before the app's next command arrives: an
    ``exit`` right behind the hangup still finds the linger notice queued before it."""
    received = bytearray()

    async def app(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.send(b"connect\n\n")
            while b"Control: " not in received:
                received.extend(await stream.receive())
            await stream.send(
                b"linger\n\nsendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n"
                b"exit\n\n"
            )
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    received.extend(await stream.receive())

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, app)
        channel = await fake.call_socket(("127.0.0.1", port))
        with trio.fail_after(10):
            await channel.wait_ended()
        task_group.cancel_scope.cancel()
    text = received.decode()
    assert text.index("Content-Disposition: linger") < text.index("Reply-Text: +OK bye")
