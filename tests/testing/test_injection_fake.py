"""Issue 9 on the fake switch, which parses originate, uuid_setvar, filters and
application arguments as FreeSWITCH does: values arrive exactly, or are refused
before anything is written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings

from genesis_trio import (
    Channel,
    Event,
    Inbound,
    LocalProtocolError,
    RemoteProtocolError,
    RingGroup,
    filtrate,
)
from genesis_trio.testing import Destination, FakeFreeSWITCH
from injection_cases import (
    DIAL_PATH,
    HOSTILE_TEXT,
    ISSUE_VALUES,
    MULTI_LEG_PATHS,
    Tally,
    check_originate,
    check_setvar,
)

ORIGINATE_TALLY = Tally()
SETVAR_TALLY = Tally()


def run_on_fake(check: Callable[[FakeFreeSWITCH, Inbound], Awaitable[None]]) -> None:
    async def main() -> None:
        async with FakeFreeSWITCH().running() as fake, Inbound(fake.host, fake.port) as client:
            fake.add_destination(DIAL_PATH, Destination())
            with trio.fail_after(30):
                await check(fake, client)

    trio.run(main)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=HOSTILE_TEXT)
def test_originate_variables_arrive_exactly_or_are_refused(value: str) -> None:
    async def check(fake: FakeFreeSWITCH, client: Inbound) -> None:
        sent = len(fake.commands_received)
        refused_before = ORIGINATE_TALLY.refused
        channel = await check_originate(client, value, ORIGINATE_TALLY)
        if channel is None:
            assert ORIGINATE_TALLY.refused == refused_before + 1
            assert len(fake.commands_received) == sent  # nothing written
        else:
            await channel.hangup()

    run_on_fake(check)
    assert ORIGINATE_TALLY.altered == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=HOSTILE_TEXT)
def test_set_variable_values_arrive_exactly_or_are_refused(value: str) -> None:
    async def check(fake: FakeFreeSWITCH, client: Inbound) -> None:
        channel = await Channel.create(client, DIAL_PATH)
        sent = len(fake.commands_received)
        refused_before = SETVAR_TALLY.refused
        await check_setvar(channel, value, SETVAR_TALLY)
        if SETVAR_TALLY.refused > refused_before:
            assert len(fake.commands_received) == sent
        await channel.hangup()

    run_on_fake(check)
    assert SETVAR_TALLY.altered == []


def test_fake_property_counts() -> None:
    # Printed with -s / in the report: how many values were tried, exact, refused.
    print(ORIGINATE_TALLY.report("fake originate variable"))
    print(SETVAR_TALLY.report("fake set_variable value"))
    assert ORIGINATE_TALLY.altered == []
    assert SETVAR_TALLY.altered == []


@pytest.mark.trio
@pytest.mark.parametrize(("value", "by_originate", "by_setvar"), ISSUE_VALUES)
async def test_issue_values(
    fake: FakeFreeSWITCH, value: str, by_originate: bool, by_setvar: bool
) -> None:
    tally = Tally()
    fake.add_destination(DIAL_PATH, Destination())
    async with Inbound(fake.host, fake.port) as client:
        channel = await check_originate(client, value, tally)
        assert (channel is not None) is by_originate
        if channel is None:
            channel = await Channel.create(client, DIAL_PATH)
        await check_setvar(channel, value, tally)
        await channel.hangup()
    assert tally.altered == []
    assert tally.exact == by_originate + by_setvar
    assert tally.refused == 2 - tally.exact


@pytest.mark.trio
async def test_injected_dial_string_no_longer_dials_another_number(fake: FakeFreeSWITCH) -> None:
    fake.add_destination(DIAL_PATH, Destination())
    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(LocalProtocolError, match="unbalanced"):
            await Channel.create(client, DIAL_PATH, {"x": "x}loopback/1234/default"})
        with pytest.raises(LocalProtocolError, match="unbalanced"):
            await RingGroup.ring(client, [DIAL_PATH], variables={"x": "x}loopback/1234/default"})
    assert fake.channel_history == ()


@pytest.mark.trio
async def test_the_fake_reads_an_injected_block_as_freeswitch_does(fake: FakeFreeSWITCH) -> None:
    # The bytes the old encoder sent for {"x": "x}loopback/1234/default"}: the block
    # ends at the first '}', origination_uuid is lost and the caller's number is dialled.
    fake.add_destination("loopback/1234/default*", Destination())
    async with Inbound(fake.host, fake.port) as client:
        reply = await client.api(
            "originate {x='x}loopback/1234/default',origination_uuid=ours}"
            "loopback/9002/default &park()"
        )
        assert reply.startswith("+OK")
        (leg,) = fake.channel_history
        assert leg.uuid != "ours"
        assert leg.variables.get("x") == "x"  # originate's space split removed the quotes
        reply = await client.api(
            "originate {x=Smith, John}loopback/1234/default &park()", check=False
        )
        assert reply == "-ERR DESTINATION_OUT_OF_ORDER\n"


@pytest.mark.trio
@pytest.mark.parametrize("path", MULTI_LEG_PATHS)
async def test_dial_paths_are_one_leg(fake: FakeFreeSWITCH, path: str) -> None:
    fake.add_destination(DIAL_PATH, Destination())
    async with Inbound(fake.host, fake.port) as client:
        sent = len(fake.commands_received)
        with pytest.raises(LocalProtocolError):
            await Channel.create(client, path)
        with pytest.raises(LocalProtocolError):
            await RingGroup.ring(client, [path])
        assert len(fake.commands_received) == sent


@pytest.mark.trio
async def test_create_hangs_up_a_leg_it_did_not_ask_for(fake: FakeFreeSWITCH) -> None:
    fake.add_destination(DIAL_PATH, Destination())
    async with Inbound(fake.host, fake.port) as client:
        stranger = await Channel.create(client, DIAL_PATH)
        # A switch that lost our origination_uuid answers with another channel's uuid.
        fake.register_api("originate", lambda argument: f"+OK {stranger.uuid}\n")
        with pytest.raises(RemoteProtocolError, match="not the origination_uuid"):
            await Channel.create(client, DIAL_PATH)
        with trio.fail_after(10):
            await stranger.wait("CHANNEL_HANGUP")
        assert stranger.hangup_cause == "ORIGINATOR_CANCEL"


@pytest.mark.trio
async def test_filter_keywords_and_spaces_are_refused(fake: FakeFreeSWITCH) -> None:
    fake.add_destination(DIAL_PATH, Destination())
    async with Inbound(fake.host, fake.port) as client:
        await client.filter("Event-Name", "HEARTBEAT")
        sent = len(fake.commands_received)
        for header, value in [("delete", "all"), ("Caller ID", "x"), ("add", "x"), ("X", "")]:
            with pytest.raises(LocalProtocolError):
                await client.filter(header, value)
        assert len(fake.commands_received) == sent


@pytest.mark.trio
async def test_filter_values_with_a_sign_are_compared_literally(fake: FakeFreeSWITCH) -> None:
    fake.add_destination(DIAL_PATH, Destination())
    async with Inbound(fake.host, fake.port) as client:
        received: list[str] = []
        got = trio.Event()

        async def handler(event: Event) -> None:
            received.append(event.get("X-Number") or "")
            if event.get("X-Number") == "end":
                got.set()

        client.on("CUSTOM", handler)
        await client.events("CUSTOM", "test::numbers")
        await client.filter("X-Number", "+15551234")
        await client.filter("X-Number", "end")
        for number in ["15551234", "+15551234", "-15551234", "+155512345", "end"]:
            await client.sendevent(
                "CUSTOM", [("Event-Subclass", "test::numbers"), ("X-Number", number)]
            )
        with trio.fail_after(10):
            await got.wait()
        assert received == ["+15551234", "end"]
        # filter delete sends the same encoding, so the switch finds the filter.
        await client.filter_delete("X-Number", "+15551234")
        got = trio.Event()
        for number in ["+15551234", "end"]:
            await client.sendevent(
                "CUSTOM", [("Event-Subclass", "test::numbers"), ("X-Number", number)]
            )
        with trio.fail_after(10):
            await got.wait()
        assert received == ["+15551234", "end", "end"]


@pytest.mark.trio
async def test_filtrate_handler_runs_for_a_plus_number(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    from genesis_trio import Consumer

    app = Consumer(fake.host, fake.port)
    seen = trio.Event()

    @app.handle("x::y")
    @filtrate("X-Number", "+15551234")
    async def on_number(event: Event) -> None:
        seen.set()

    async with trio.open_nursery() as nursery:
        client: Inbound = await nursery.start(app.serve)
        await client.sendevent("CUSTOM", [("Event-Subclass", "x::y"), ("X-Number", "+15551234")])
        with trio.fail_after(10):
            await seen.wait()
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_upper_case_custom_subclass_is_requested_as_a_subclass(
    fake: FakeFreeSWITCH,
) -> None:
    fake.add_destination(DIAL_PATH, Destination())
    async with (
        Inbound(fake.host, fake.port) as client,
        client.subscribe("SMS::SEND_MESSAGE") as events,
    ):
        assert "event plain CUSTOM SMS::SEND_MESSAGE" in fake.commands_received
        await client.sendevent("CUSTOM", [("Event-Subclass", "SMS::SEND_MESSAGE")])
        with trio.fail_after(10):
            event = await events.receive()
        assert event.subclass == "SMS::SEND_MESSAGE"


@pytest.mark.trio
@pytest.mark.parametrize(
    "send",
    [
        lambda client: client.api("status\x00; hupall"),
        lambda client: client.bgapi("status\x00"),
        lambda client: client.send("api status\x00"),
    ],
)
async def test_nul_bytes_are_refused(fake: FakeFreeSWITCH, send: Callable[..., object]) -> None:
    fake.add_destination(DIAL_PATH, Destination())
    async with Inbound(fake.host, fake.port) as client:
        sent = len(fake.commands_received)
        with pytest.raises(LocalProtocolError, match="NUL"):
            await send(client)  # type: ignore[misc]
        assert len(fake.commands_received) == sent


@pytest.mark.trio
async def test_application_arguments_arrive_exactly(fake: FakeFreeSWITCH) -> None:
    fake.add_destination(DIAL_PATH, Destination())
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, DIAL_PATH)
        # A leading space and a line break travel in the body, byte for byte.
        # A line break travels in the body, byte for byte.
        for value in ["x= two words ", "x=line\nbreak", "x='q' \"d\" {b} [c] ,|^%"]:
            await channel.execute("set", value)
            assert await channel.get_variable("x") == value.partition("=")[2]
        await channel.say("12 34", kind="NUMBER")
        assert fake.channel_history[0].said[-1] == "12 34"
        with pytest.raises(LocalProtocolError, match="expand"):
            await channel.execute("set", "x=${system(id)}")
        with pytest.raises(LocalProtocolError, match="expand"):
            await channel.playback("${base_dir}/x.wav")
        with pytest.raises(LocalProtocolError):
            await channel.say("it's")
        await channel.hangup()


@pytest.mark.trio
async def test_a_raw_multi_leg_originate_is_parsed_like_freeswitch(fake: FakeFreeSWITCH) -> None:
    fake.add_destination(DIAL_PATH, Destination())
    async with Inbound(fake.host, fake.port) as client:
        reply = await client.api(
            f"originate {{a=1}}[b=2]{DIAL_PATH},[c=3]user/1|user/2 &park()", check=False
        )
        assert reply.startswith("+OK")
        (leg,) = fake.channel_history
        assert leg.dial_string is not None
        assert [path for _, path in leg.dial_string.legs] == [DIAL_PATH, "user/1", "user/2"]
        assert leg.dial_string.groups[0][1] == ({"c": "3"}, "user/1")
        assert leg.variables.get("a") == "1"
        assert leg.variables.get("b") == "2"
        assert "c" not in leg.variables


@pytest.mark.trio
async def test_a_filtrate_the_switch_cannot_take_stays_local(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    from genesis_trio import Consumer

    app = Consumer(fake.host, fake.port)
    seen: list[str] = []
    done = trio.Event()

    @app.handle("x::y")
    @filtrate("X-Empty", "")
    async def on_empty(event: Event) -> None:
        seen.append(event.get("X-Empty") or "")
        done.set()

    async with trio.open_nursery() as nursery:
        client: Inbound = await nursery.start(app.serve)
        assert not any(line.startswith("filter X-Empty") for line in fake.commands_received)
        await client.sendevent("CUSTOM", [("Event-Subclass", "x::y"), ("X-Empty", "")])
        with trio.fail_after(10):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert seen == [""]
