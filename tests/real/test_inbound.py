"""The Inbound client against a real FreeSWITCH: every check reads what the switch did
(``uuid_exists``, ``uuid_getvar``, ``global_getvar``, the events it sent), not only what the
client believes."""

from __future__ import annotations

import json
import uuid as uuid_module

import pytest
import trio

from genesis_trio import (
    ApiResponse,
    AuthenticationError,
    CommandError,
    CommandReply,
    Event,
    EventFormat,
    Inbound,
    LogData,
)
from real_switch import RealSwitch, channel_exists, unique_name

from ._calls import first_of_each, next_matching, parked_call

pytestmark = pytest.mark.trio

DEADLINE = 20  # generous: the switch is shared and the machine is loaded
NO_SUCH_UUID = "9a0c3f0e-0000-4000-8000-000000000000"


async def test_good_password_authenticates(freeswitch: RealSwitch) -> None:
    async with Inbound(freeswitch.host, freeswitch.port, freeswitch.password) as client:
        assert client.is_connected
        assert "is ready" in await client.api("status")
    assert not client.is_connected


async def test_wrong_password_is_refused_without_leaking_it(freeswitch: RealSwitch) -> None:
    secret = "wrong-" + unique_name()
    with trio.fail_after(DEADLINE), pytest.raises(AuthenticationError) as refused:
        async with Inbound(freeswitch.host, freeswitch.port, secret):
            pass
    assert secret not in str(refused.value)
    assert secret not in repr(refused.value)
    # A refusal leaves the switch willing: the right password still works at once.
    async with freeswitch.inbound() as client:
        assert "UP" in await client.api("status")


async def test_send_returns_raw_replies_even_errors(freeswitch: RealSwitch) -> None:
    async with freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            reply = await client.send("api uptime")
            assert isinstance(reply, ApiResponse)
            assert reply.body.strip().isdigit()
            refused = await client.send("no_such_command")
            assert isinstance(refused, CommandReply)
            assert refused.reply_text == "-ERR command not found"
            # The connection carries on after the raw -ERR.
            assert "UP" in await client.api("status")


async def test_api_changes_switch_state(freeswitch: RealSwitch) -> None:
    name, value = unique_name("genesis_api_"), unique_name("v")
    async with freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            await client.api(f"global_setvar {name}={value}")
            assert (await client.api(f"global_getvar {name}")).strip() == value
            await client.api(f"global_setvar {name}=")


async def test_bgapi_originates_a_call_the_switch_reports(freeswitch: RealSwitch) -> None:
    uuid = str(uuid_module.uuid4())
    marker = unique_name()
    async with freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            job = await client.bgapi_event(
                f"originate {{origination_uuid={uuid},genesis_marker={marker}}}"
                "loopback/9002/default &park"
            )
            try:
                assert job.name == "BACKGROUND_JOB"
                assert job["Job-Command"] == "originate"
                assert (job.body or "").strip() == f"+OK {uuid}"
                assert await channel_exists(client, uuid)
                assert (await client.api(f"uuid_getvar {uuid} genesis_marker")).strip() == marker
                # bgapi returns the job's body; a second job on the same connection works.
                assert (await client.bgapi(f"uuid_exists {uuid}")).strip() == "true"
            finally:
                await client.api(f"uuid_kill {uuid}", check=False)
            assert not await channel_exists(client, uuid)


async def test_err_replies_raise_command_error(freeswitch: RealSwitch) -> None:
    async with freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            with pytest.raises(CommandError) as api_error:
                await client.api("no_such_command")
            assert api_error.value.reply == "-ERR no_such_command Command not found!"

            with pytest.raises(CommandError) as getvar_error:
                await client.api(f"uuid_getvar {NO_SUCH_UUID} anything")
            assert getvar_error.value.reply == "-ERR No such channel!"

            with pytest.raises(CommandError) as job_error:
                await client.bgapi(f"uuid_kill {NO_SUCH_UUID}")
            assert job_error.value.reply == "-ERR No such channel!"
            raw = await client.bgapi(f"uuid_kill {NO_SUCH_UUID}", check=False)
            assert raw.startswith("-ERR No such channel!")

            with pytest.raises(CommandError) as sendmsg_error:
                await client.sendmsg({"call-command": "hangup"}, uuid=NO_SUCH_UUID)
            assert sendmsg_error.value.reply == f"-ERR invalid session id [{NO_SUCH_UUID}]"

            with pytest.raises(CommandError) as log_error:
                await client.log("not-a-level")
            assert log_error.value.reply == "-ERR invalid log level"

            # Errors are per command: the connection is still good.
            assert "UP" in await client.api("status")


LIFECYCLE = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CALL_UPDATE", "CHANNEL_HANGUP_COMPLETE")


@pytest.mark.parametrize("event_format", ["plain", "json", "xml"])
async def test_channel_events_in_every_format(
    freeswitch: RealSwitch, event_format: EventFormat
) -> None:
    """The same call's events read alike in the three formats, and match ``uuid_dump``."""
    caller_name = "Genesis Tester"  # a space: url-encoded in plain, escaped in xml
    async with freeswitch.inbound() as control, freeswitch.inbound() as listener:
        with trio.fail_after(DEADLINE):
            await listener.events(*LIFECYCLE, event_format=event_format)
            async with (
                listener.subscribe(*LIFECYCLE, request=False) as events,
                parked_call(control, variables={"origination_caller_id_name": caller_name}) as uuid,
            ):
                # The a-leg's caller ID flips when it starts its &park (below).
                first = await first_of_each(
                    events, uuid, "CHANNEL_CREATE", "CHANNEL_ANSWER", "CALL_UPDATE"
                )
                created, answered = first["CHANNEL_CREATE"], first["CHANNEL_ANSWER"]
                flipped = first["CALL_UPDATE"]
                dump = json.loads(await control.api(f"uuid_dump {uuid} json"))
                await control.api(f"uuid_kill {uuid} CALL_REJECTED")
                completed = await next_matching(events, "CHANNEL_HANGUP_COMPLETE", uuid)
    assert dump["Unique-ID"] == uuid
    for event in (created, answered, completed):
        assert event["Channel-Name"] == "loopback/9002-a"
        assert event["Event-Calling-Function"]
    assert created["Caller-Caller-ID-Name"] == answered["Caller-Caller-ID-Name"] == caller_name
    # Once the a-leg runs its &park, the switch swaps its caller and callee (CALL_UPDATE):
    # from then on the name we gave is the callee's, in uuid_dump and in events alike.
    assert flipped["Caller-Callee-ID-Name"] == caller_name
    assert dump["Caller-Callee-ID-Name"] == completed["Caller-Callee-ID-Name"] == caller_name
    assert completed["variable_origination_caller_id_name"] == caller_name
    assert created["Channel-State"] == "CS_INIT"
    assert answered["Answer-State"] == "answered"
    assert completed.hangup_cause == "CALL_REJECTED"
    assert completed["variable_origination_caller_id_name"] == caller_name
    assert int(created["Event-Sequence"]) < int(completed["Event-Sequence"])


SENT_HEADERS = {
    "X-Comma": "Smith, John",
    "X-Colon": "a: b",
    "X-Unicode": "José ✓",
    "X-Trailing": "kept  ",
}
SENT_BODY = "line one\nline two\n\nJosé ✓"


@pytest.mark.parametrize("event_format", ["plain", "json", "xml"])
async def test_sendevent_with_a_body_reaches_other_listeners(
    freeswitch: RealSwitch, event_format: EventFormat
) -> None:
    subclass = f"genesis::{unique_name()}"
    async with freeswitch.inbound() as sender, freeswitch.inbound() as listener:
        with trio.fail_after(DEADLINE):
            async with listener.subscribe(subclass) as events:
                await listener.events("CUSTOM", subclass, event_format=event_format)
                event_uuid = await sender.sendevent(
                    "CUSTOM", {"Event-Subclass": subclass, **SENT_HEADERS}, body=SENT_BODY
                )
                event = await events.receive()
    assert event.name == "CUSTOM"
    assert event.subclass == subclass
    # The switch names the event; sendevent returns that uuid from its +OK reply.
    assert event["Event-UUID"] == event_uuid
    for name, value in SENT_HEADERS.items():
        assert event[name] == value, name
    assert event.body == SENT_BODY


async def test_a_percent_escape_in_a_value_survives_only_in_json(freeswitch: RealSwitch) -> None:
    """FreeSWITCH url-encodes plain and xml values but leaves an existing ``%XX`` as it is,
    so a value holding one comes back decoded; json carries it verbatim. The switch's
    behaviour, recorded here so that the fake and the docs keep agreeing with it."""
    subclass = f"genesis::{unique_name()}"
    value = "100% off %41"
    seen: dict[str, str | None] = {}
    async with freeswitch.inbound() as sender:
        for event_format in ("plain", "json", "xml"):
            async with freeswitch.inbound() as listener:
                with trio.fail_after(DEADLINE):
                    await listener.events("CUSTOM", subclass, event_format=event_format)
                    async with listener.subscribe(subclass, request=False) as events:
                        await sender.sendevent(
                            "CUSTOM", {"Event-Subclass": subclass, "X-Value": value}
                        )
                        seen[event_format] = (await events.receive()).get("X-Value")
    assert seen == {"json": value, "plain": "100% off A", "xml": "100% off A"}


async def test_switch_side_filter_and_its_removal(freeswitch: RealSwitch) -> None:
    """Only events matching a filter leave the switch; deleting it lets the rest through.

    Markers are fired by a second connection; each phase ends with a ``keep`` marker, so
    a ``drop`` marker that got through would be seen before it (a working filter never
    sends it at all).
    """
    keep, drop = f"genesis::{unique_name('keep')}", f"genesis::{unique_name('drop')}"
    async with freeswitch.inbound() as sender, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            await client.events("CUSTOM", keep, drop)
            await client.filter("Event-Subclass", keep)
            async with client.subscribe(keep, drop, request=False) as events:
                for _ in range(3):
                    await sender.sendevent("CUSTOM", {"Event-Subclass": drop})
                await sender.sendevent("CUSTOM", {"Event-Subclass": keep, "X-Phase": "1"})
                first = await events.receive()
                assert (first.subclass, first["X-Phase"]) == (keep, "1")

                await client.filter_delete("Event-Subclass", keep)
                await sender.sendevent("CUSTOM", {"Event-Subclass": drop, "X-Phase": "2"})
                second = await events.receive()
                assert (second.subclass, second["X-Phase"]) == (drop, "2")


async def test_filter_on_a_channel_uuid_keeps_other_calls_out(freeswitch: RealSwitch) -> None:
    async with freeswitch.inbound() as control, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            await client.events("CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE")
            async with parked_call(control) as wanted:
                await client.filter("Unique-ID", wanted)
                async with client.subscribe(
                    "CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE", request=False
                ) as events:
                    async with parked_call(control) as other:
                        # Created and hung up while the filter is on: both of its legs.
                        other_legs = {
                            other,
                            (
                                await control.api(f"uuid_getvar {other} other_loopback_leg_uuid")
                            ).strip(),
                        }
                    await control.api(f"uuid_kill {wanted}")
                    seen: list[tuple[str | None, str | None]] = []
                    async for event in events:
                        seen.append((event.name, event.unique_id))
                        if event.name == "CHANNEL_HANGUP_COMPLETE" and event.unique_id == wanted:
                            break
    assert wanted not in other_legs
    # Events fired before the filter took effect (the wanted call's own legs being
    # created) may still arrive; nothing of the call placed after it does.
    assert not other_legs & {uuid for _, uuid in seen}, seen
    assert seen[-1] == ("CHANNEL_HANGUP_COMPLETE", wanted)


async def test_bgapi_after_a_filter(freeswitch: RealSwitch) -> None:
    """Issue 10 item 1: a filter added after a bgapi must not keep BACKGROUND_JOB out."""
    async with freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            assert "FreeSWITCH" in await client.bgapi("version")
            await client.filter("Event-Subclass", f"genesis::{unique_name()}")
            assert "FreeSWITCH" in await client.bgapi("version")


async def test_subscriptions_by_name_and_by_subclass(freeswitch: RealSwitch) -> None:
    """``subscribe`` asks the switch for what it names (``event plain CHANNEL_ANSWER``,
    ``event plain CUSTOM <subclass>``) and receives it."""
    subclass = f"genesis::{unique_name()}"
    async with freeswitch.inbound() as control, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with (
                client.subscribe("CHANNEL_ANSWER") as answers,
                client.subscribe(subclass) as customs,
            ):
                async with parked_call(control) as uuid:
                    answered = await next_matching(answers, "CHANNEL_ANSWER", uuid)
                await control.sendevent("CUSTOM", {"Event-Subclass": subclass, "X-N": "1"})
                custom = await customs.receive()
    assert answered["Answer-State"] == "answered"
    assert (custom.subclass, custom["X-N"]) == (subclass, "1")


async def test_uuid_subscription_sees_only_its_channel(freeswitch: RealSwitch) -> None:
    async with freeswitch.inbound() as control, freeswitch.inbound() as client:
        await client.events("ALL")
        with trio.fail_after(DEADLINE):
            async with (
                parked_call(control) as first,
                parked_call(control) as second,
                client.subscribe(uuid=first, request=False) as of_first,
            ):
                await control.api(f"uuid_kill {second}")
                await control.api(f"uuid_kill {first}")
                received: list[Event] = []
                async for event in of_first:
                    received.append(event)
                    if event.name == "CHANNEL_DESTROY":
                        break
    assert {event.unique_id for event in received} == {first}
    names = [event.name for event in received]
    assert names.index("CHANNEL_HANGUP") < names.index("CHANNEL_HANGUP_COMPLETE")


async def test_nixevent_stops_what_events_started(freeswitch: RealSwitch) -> None:
    off, on = f"genesis::{unique_name('off')}", f"genesis::{unique_name('on')}"
    async with freeswitch.inbound() as sender, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            await client.events("CUSTOM", off, on)
            async with client.subscribe(off, on, request=False) as events:
                await client.nixevent("CUSTOM", off)
                await sender.sendevent("CUSTOM", {"Event-Subclass": off})
                await sender.sendevent("CUSTOM", {"Event-Subclass": on})
                assert (await events.receive()).subclass == on


async def test_logs_at_the_level_asked_for(freeswitch: RealSwitch) -> None:
    quiet, loud = unique_name("quiet"), unique_name("loud")
    async with freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with client.subscribe_logs("ERR") as logs:
                await client.api(f"log NOTICE {quiet}")  # below ERR: not sent to us
                await client.api(f"log ERR {loud}")
                line = await _next_log_holding(logs, (quiet, loud))
    assert loud in line.body
    assert quiet not in line.body
    assert line.level == 3
    assert line.headers["Log-File"] == "mod_commands.c"


async def test_nolog_stops_the_log_stream(freeswitch: RealSwitch) -> None:
    before, after = unique_name("before"), unique_name("after")
    marker = f"genesis::{unique_name()}"
    async with freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with client.subscribe_logs(7) as logs, client.subscribe(marker) as events:
                await client.api(f"log NOTICE {before}")
                await _next_log_holding(logs, (before,))
                await client.nolog()
                await client.api(f"log NOTICE {after}")
                # Logs and events share the connection: once this event is here, the log
                # line written before it would have been here too.
                await client.sendevent("CUSTOM", {"Event-Subclass": marker})
                await events.receive()
                leftover = [logs.receive_nowait() for _ in range(logs.buffered)]
    assert not any(after in item.body for item in leftover if item is not None)


async def _next_log_holding(logs: object, markers: tuple[str, ...]) -> LogData:
    async for line in logs:  # type: ignore[attr-defined]
        assert isinstance(line, LogData)
        if any(marker in line.body for marker in markers):
            return line
    raise AssertionError("the log stream ended")


async def test_handlers_run_for_real_events(freeswitch: RealSwitch) -> None:
    completed: list[tuple[str | None, str | None]] = []
    answered: list[str | None] = []
    hung_up, answer_seen = trio.Event(), trio.Event()
    async with freeswitch.inbound() as control, freeswitch.inbound() as client:
        uuid = str(uuid_module.uuid4())  # known before the call: its events may beat the reply

        async def on_any(event: Event) -> None:
            if event.name == "CHANNEL_HANGUP_COMPLETE" and event.unique_id == uuid:
                completed.append((event.name, event.hangup_cause))
                hung_up.set()

        async def on_answer(event: Event) -> None:
            if event.unique_id == uuid:
                answered.append(event.unique_id)
                answer_seen.set()

        def broken(event: Event) -> None:
            raise RuntimeError("a handler's bug must not end the connection")

        client.on("ALL", on_any)
        client.on("CHANNEL_ANSWER", on_answer)
        registration = client.on("CHANNEL_ANSWER", broken, concurrent=True)
        await client.events("CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")
        with trio.fail_after(DEADLINE):
            async with parked_call(control, cause="USER_BUSY", uuid=uuid):
                await answer_seen.wait()
            await hung_up.wait()
            registration.close()
            assert "UP" in await client.api("status")
    assert answered == [uuid]
    assert completed == [("CHANNEL_HANGUP_COMPLETE", "USER_BUSY")]
