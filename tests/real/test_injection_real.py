"""Issue 9 on a real FreeSWITCH: every value reaches the switch exactly, or our code
refuses it before writing. Also checks the model of FreeSWITCH's parsers
(genesis_trio.protocol._fsparse), which the encoders and the fake rely on, against
the real thing."""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Awaitable, Callable

import pytest
import trio
from hypothesis import HealthCheck, given, settings

from genesis_trio import Channel, Event, Inbound, LocalProtocolError, RingGroup, filtrate
from genesis_trio.protocol import _fsparse as fs
from genesis_trio.protocol._encoding import blank_argument
from injection_cases import (
    DIAL_PATH,
    HOSTILE_TEXT,
    ISSUE_VALUES,
    MULTI_LEG_PATHS,
    Tally,
    check_originate,
    check_setvar,
)
from real_switch import RealSwitch

DEADLINE = 30
ORIGINATE_TALLY = Tally()
SETVAR_TALLY = Tally()
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def run_on(switch: RealSwitch, check: Callable[[Inbound], Awaitable[None]]) -> None:
    async def main() -> None:
        async with switch.inbound() as client:
            with trio.fail_after(DEADLINE):
                await check(client)

    trio.run(main)


async def kill(client: Inbound, uuid: str) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(10):
        await client.api(f"uuid_kill {uuid}", check=False)


# --- the model agrees with the switch -------------------------------------------------------

# Raw originate blocks (as FreeSWITCH reads them after the space split) and raw uuid_setvar
# values: the model must predict what the switch stores, quirks included.
RAW_BLOCKS = [
    "x=Smith, John",
    "x=Mallory,origination_caller_id_number=911",
    "x='a,b'",
    "x=a\\,b",
    "x=back\\slash",
    "x=  padded  ",
    "x=\\s\\spadded\\s",
    "x=it\\'s",
    "x='it''s'",
    "x=a=b=c",
    "x=^y",
    "^^;x=a,b;y=c",
    "x={a,b}",
    'x="dq"',
    "x=tab\\there",
    "x=a\\\\b",
]
RAW_SETVAR = [
    "'quoted'",
    "back\\slash",
    "  both ends  ",
    "a 'b c' d",
    "it\\'s",
    "\\s\\slead",
    "x\\\\y",
    '"dq"',
    "a\\,b",
    "'unclosed",
]


@pytest.mark.parametrize("block", RAW_BLOCKS)
def test_model_predicts_originate_blocks(freeswitch: RealSwitch, block: str) -> None:
    async def check(client: Inbound) -> None:
        uuid = str(uuid_module.uuid4())
        separator = block[2] if block.startswith("^^") else ","
        # Escaped for originate's space split only, so the block reaches the block parser
        # exactly as written above.
        text = blank_argument(f"{{{block}{separator}origination_uuid={uuid}}}{DIAL_PATH}")
        predicted = fs.parse_dial_string(fs.separate_string(f"{text} &park()", " ", 10)[0])
        assert predicted.error is None
        reply = await client.api(f"originate {text} &park()", check=False)
        try:
            assert reply.strip() == f"+OK {uuid}", reply
            for name in ("x", "y"):
                stored = await client.api(f"uuid_getvar {uuid} {name}")
                assert stored == predicted.variables.get(name, "_undef_"), (name, stored)
        finally:
            await kill(client, uuid)

    run_on(freeswitch, check)


def test_model_predicts_setvar_values(freeswitch: RealSwitch) -> None:
    async def check(client: Inbound) -> None:
        channel = await Channel.create(client, DIAL_PATH)
        try:
            for raw in RAW_SETVAR:
                await client.api(f"uuid_setvar {channel.uuid} v {raw}")
                stored = await client.api(f"uuid_getvar {channel.uuid} v")
                assert stored == fs.separate_string(f"u v {raw}", " ", 3)[2], raw
        finally:
            await kill(client, channel.uuid)

    run_on(freeswitch, check)


def test_model_predicts_the_old_injection(freeswitch: RealSwitch) -> None:
    """The bytes the old encoder sent for {"x": "x}loopback/...."}: origination_uuid lost."""

    async def check(client: Inbound) -> None:
        ours = str(uuid_module.uuid4())
        argument = f"{{x='x}}{DIAL_PATH}',origination_uuid={ours}}}{DIAL_PATH}"
        predicted = fs.parse_dial_string(fs.separate_string(argument, " ", 10)[0])
        assert "origination_uuid" not in predicted.variables
        assert len(predicted.legs) == 2
        reply = (await client.api(f"originate {argument} &park()", check=False)).strip()
        if reply.startswith("+OK"):
            created = reply.split()[1]
            try:
                assert created != ours
                assert await client.api(f"uuid_getvar {created} x") == predicted.variables["x"]
            finally:
                await kill(client, created)

    run_on(freeswitch, check)


# --- properties: arbitrary text reaches the switch exactly, or is refused -----------------------


@PROPERTY_SETTINGS
@given(value=HOSTILE_TEXT)
def test_originate_variables_arrive_exactly_or_are_refused(
    freeswitch: RealSwitch, value: str
) -> None:
    async def check(client: Inbound) -> None:
        channel = await check_originate(client, value, ORIGINATE_TALLY)
        if channel is not None:
            await kill(client, channel.uuid)

    run_on(freeswitch, check)
    assert ORIGINATE_TALLY.altered == []


@pytest.fixture(scope="module")
def parked_uuid(freeswitch: RealSwitch) -> str:
    async def create() -> str:
        async with freeswitch.inbound() as client:
            uuid = str(uuid_module.uuid4())
            reply = await client.api(
                f"originate {{origination_uuid={uuid}}}{DIAL_PATH} &park()", check=False
            )
            assert reply.strip() == f"+OK {uuid}", reply
            return uuid

    return trio.run(create)


@PROPERTY_SETTINGS
@given(value=HOSTILE_TEXT)
def test_set_variable_values_arrive_exactly_or_are_refused(
    freeswitch: RealSwitch, parked_uuid: str, value: str
) -> None:
    async def check(client: Inbound) -> None:
        channel = await Channel.from_uuid(client, parked_uuid)
        await check_setvar(channel, value, SETVAR_TALLY)

    run_on(freeswitch, check)
    assert SETVAR_TALLY.altered == []


def test_real_property_counts(freeswitch: RealSwitch, parked_uuid: str) -> None:
    run_on(freeswitch, lambda client: kill(client, parked_uuid))
    print(ORIGINATE_TALLY.report("real originate variable"))
    print(SETVAR_TALLY.report("real set_variable value"))
    assert ORIGINATE_TALLY.altered == []
    assert SETVAR_TALLY.altered == []


# --- every case of the issue, as a regression test ----------------------------------------------


@pytest.mark.parametrize(("value", "by_originate", "by_setvar"), ISSUE_VALUES)
def test_issue_values(
    freeswitch: RealSwitch, value: str, by_originate: bool, by_setvar: bool
) -> None:
    tally = Tally()

    async def check(client: Inbound) -> None:
        channel = await check_originate(client, value, tally)
        assert (channel is not None) is by_originate
        if channel is None:
            channel = await Channel.create(client, DIAL_PATH)
        try:
            await check_setvar(channel, value, tally)
        finally:
            await kill(client, channel.uuid)

    run_on(freeswitch, check)
    assert tally.altered == []
    assert tally.exact == by_originate + by_setvar


def test_toll_fraud_value_is_refused_by_create_and_ring(freeswitch: RealSwitch) -> None:
    async def check(client: Inbound) -> None:
        with pytest.raises(LocalProtocolError, match="unbalanced"):
            await Channel.create(client, DIAL_PATH, {"x": "x}loopback/9002/default"})
        with pytest.raises(LocalProtocolError, match="unbalanced"):
            await RingGroup.ring(client, [DIAL_PATH], variables={"x": "x}loopback/9002/default"})

    run_on(freeswitch, check)


@pytest.mark.parametrize("path", MULTI_LEG_PATHS)
def test_dial_paths_are_one_leg(freeswitch: RealSwitch, path: str) -> None:
    async def check(client: Inbound) -> None:
        with pytest.raises(LocalProtocolError):
            await Channel.create(client, path)
        with pytest.raises(LocalProtocolError):
            await RingGroup.ring(client, [path])

    run_on(freeswitch, check)


def test_filters_keywords_refused_and_signed_values_literal(freeswitch: RealSwitch) -> None:
    async def check(client: Inbound) -> None:
        for header, value in [("delete", "all"), ("Caller ID", "x"), ("add", "x")]:
            with pytest.raises(LocalProtocolError):
                await client.filter(header, value)
        subclass = f"genesis::injection{uuid_module.uuid4().hex[:8]}"
        received: list[str] = []
        done = trio.Event()

        async def handler(event: Event) -> None:
            received.append(event.get("X-Number") or "")
            if event.get("X-Number") == "end":
                done.set()

        client.on(subclass, handler)
        await client.events(subclass)
        await client.filter("X-Number", "+15551234")
        await client.filter("X-Number", "end")
        for number in ["15551234", "+15551234", "-15551234", "+155512345", "end"]:
            await client.sendevent("CUSTOM", [("Event-Subclass", subclass), ("X-Number", number)])
        await done.wait()
        assert received == ["+15551234", "end"]
        # The delete carries the same encoding: the switch finds and removes the filter.
        await client.filter_delete("X-Number", "+15551234")
        done = trio.Event()
        for number in ["+15551234", "end"]:
            await client.sendevent("CUSTOM", [("Event-Subclass", subclass), ("X-Number", number)])
        await done.wait()
        assert received == ["+15551234", "end", "end"]

    run_on(freeswitch, check)


def test_filtrate_on_a_plus_number_runs_the_handler(freeswitch: RealSwitch) -> None:
    from genesis_trio import Consumer

    subclass = f"genesis::filtrate{uuid_module.uuid4().hex[:8]}"
    app = Consumer(freeswitch.host, freeswitch.port, freeswitch.password)
    seen = trio.Event()

    @app.handle(subclass)
    @filtrate("Caller-Caller-ID-Number", "+15551234")
    async def on_number(event: Event) -> None:
        seen.set()

    async def main() -> None:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                client: Inbound = await nursery.start(app.serve)
                await client.sendevent(
                    "CUSTOM",
                    [("Event-Subclass", subclass), ("Caller-Caller-ID-Number", "+15551234")],
                )
                await seen.wait()
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_upper_case_custom_subclass(freeswitch: RealSwitch) -> None:
    async def check(client: Inbound) -> None:
        async with client.subscribe("SMS::SEND_MESSAGE") as events:
            await client.sendevent("CUSTOM", [("Event-Subclass", "SMS::SEND_MESSAGE")])
            event = await events.receive()
            assert event.subclass == "SMS::SEND_MESSAGE"

    run_on(freeswitch, check)


def test_nul_bytes_are_refused(freeswitch: RealSwitch) -> None:
    async def check(client: Inbound) -> None:
        for send in (client.api, client.bgapi, client.send):
            with pytest.raises(LocalProtocolError, match="NUL"):
                await send("status\x00")
        assert "UP" in await client.api("status")

    run_on(freeswitch, check)


def test_application_arguments_arrive_exactly(freeswitch: RealSwitch) -> None:
    async def check(client: Inbound) -> None:
        channel = await Channel.create(client, DIAL_PATH)
        try:
            # Header form, body form (line break), and text with every special character.
            for value in ["x= two words ", "x=line\nbreak", "x='q' \"d\" {b} [c] ,|^%\\d"]:
                await channel.execute("set", value)
                assert await channel.get_variable("x") == value.partition("=")[2]
            # set takes its argument whole: this shows expansion leaves \s alone.
            await channel.execute("set", "x=a\\sb")
            assert await channel.get_variable("x") == "a\\sb"
            with pytest.raises(LocalProtocolError, match="expand"):
                await channel.execute("set", "x=${origination_uuid}")
            await channel.execute("set", "x=${origination_uuid}", expand=True)
            assert await channel.get_variable("x") == channel.uuid
        finally:
            await kill(client, channel.uuid)

    run_on(freeswitch, check)
