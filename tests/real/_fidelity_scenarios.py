"""The scenarios the differential test runs on the fake and on the real switch.

Each one drives a switch through the public API over recording proxies
(:class:`_fidelity_kit.Recorder`) and waits for the switch's own events, never for time.
They use the dialplan of ``shared/freeswitch/README.md`` (loopback extensions 9000-9010),
which the fake routes the same way.
"""

from __future__ import annotations

import contextlib
import uuid as uuid_module

import trio

from genesis_trio import (
    AuthenticationError,
    Channel,
    CommandError,
    Inbound,
    OriginateError,
    Outbound,
    Session,
)

from ._fidelity_kit import Recorder, Scenario

__all__ = ["PARSER_SCENARIOS", "SCENARIOS"]

NOBODY = "00000000-0000-0000-0000-000000000000"
TONE = "tone_stream://%(100,0,440)"


def _uuid() -> str:
    return str(uuid_module.uuid4())


async def _originate(client: Inbound, extension: str, uuid: str, variables: str = "") -> None:
    """A bgapi originate whose job we do not wait for (the events tell what happened)."""
    extra = f",{variables}" if variables else ""
    await client.send(
        f"bgapi originate {{origination_uuid={uuid}{extra}}}loopback/{extension}/default &park"
    )


# --------------------------------------------------------------------------- scenarios


async def auth_ok(recorder: Recorder) -> None:
    async with recorder.inbound():
        pass


async def auth_wrong(recorder: Recorder) -> None:
    try:
        async with recorder.inbound(password="not-the-password"):
            pass
    except AuthenticationError:
        pass
    else:
        raise AssertionError("a wrong password was accepted")


async def api_stable(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        for command in (
            "echo hello  world",
            "global_setvar fidelity_probe=some value",
            "global_getvar fidelity_probe",
            "global_getvar fidelity_never_set",
            f"uuid_exists {NOBODY}",
            "version short",
            "reloadxml",
            "msleep 1",
            "hostname",
            "show channels like fidelity-nothing-matches",
            "show channels like fidelity-nothing-matches as json",
            "show nothing",
            "uuid_dump",
            "create_uuid",
        ):
            await client.api(command, check=False)


async def errors(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        for raw in ("nosuchcommand", "filter", "linger", "nolinger", "nolog", "noevents"):
            await client.send(raw)
        for command in (
            "nosuchcommand arg1",
            f"uuid_kill {NOBODY}",
            f"uuid_getvar {NOBODY} x",
            f"uuid_setvar {NOBODY} x y",
            f"uuid_send_dtmf {NOBODY} 1",
            f"uuid_break {NOBODY}",
            f"uuid_park {NOBODY}",
            f"uuid_dump {NOBODY}",
            f"uuid_bridge {NOBODY} {NOBODY}",
            "originate",
            "uuid_kill",
            "uuid_getvar",
            "uuid_setvar",
        ):
            await client.api(command, check=False)
        with contextlib.suppress(CommandError):
            await client.sendmsg([("call-command", "hangup")], uuid=NOBODY)
        await client.send(f"myevents {NOBODY} json")


async def bgapi(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        for command in ("echo background", "version short", "nosuchcommand", f"uuid_kill {NOBODY}"):
            await client.bgapi(command, check=False)


def _events_in(event_format: str) -> Scenario:
    async def scenario(recorder: Recorder) -> None:
        uuid = _uuid()
        async with recorder.inbound() as client:
            await client.send(
                f"event {event_format} CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP "
                "CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY BACKGROUND_JOB CHANNEL_STATE"
            )
            await _originate(client, "9002", uuid)
            await recorder.wait_event("BACKGROUND_JOB")
            await client.api(f"uuid_kill {uuid}")
            await recorder.settle()

    scenario.__name__ = f"events_{event_format}"
    return scenario


async def filters(recorder: Recorder) -> None:
    uuid = _uuid()
    async with recorder.inbound() as client:
        for raw in (
            "event plain ALL",
            "filter Event-Name CHANNEL_ANSWER",
            f"filter Unique-ID {uuid}",
            "filter Event-Name -CHANNEL_STATE",
            "filter Event-Name BACKGROUND_JOB",
        ):
            await client.send(raw)
        await _originate(client, "9002", uuid)
        await recorder.wait_event("BACKGROUND_JOB")
        await client.api(f"uuid_kill {uuid}")
        await recorder.wait_event("CHANNEL_DESTROY", uuid=uuid)
        for raw in ("filter delete Unique-ID", "filter delete all", "filter delete Event-Name x"):
            await client.send(raw)


def _call(extension: str, *, kill: bool = True, cause: str = "") -> Scenario:
    """``event plain ALL`` and a bgapi originate of ``loopback/<extension>``."""

    async def scenario(recorder: Recorder) -> None:
        uuid = _uuid()
        async with recorder.inbound() as client:
            await client.send("event plain ALL")
            await _originate(client, extension, uuid)
            if kill:
                await recorder.wait_event("CHANNEL_PARK", uuid=uuid)
                await client.api(f"uuid_kill {uuid} {cause}".strip())
            await recorder.wait_event("BACKGROUND_JOB")
            await recorder.settle()

    scenario.__name__ = f"call_{extension}{'_' + cause.lower() if cause else ''}"
    return scenario


async def call_9003_early_media(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        await client.send("event plain ALL")
        channel = await Channel.create(client, "loopback/9003/default")
        await recorder.wait_event("CHANNEL_PARK", uuid=channel.uuid)
        await channel.hangup()
        await recorder.settle()


async def call_9004_killed_while_ringing(recorder: Recorder) -> None:
    uuid = _uuid()
    async with recorder.inbound() as client:
        await client.send("event plain ALL")
        await _originate(client, "9004", uuid)
        await recorder.wait_event("CHANNEL_PROGRESS", uuid=uuid)
        await client.api(f"uuid_kill {uuid}")
        await recorder.wait_event("BACKGROUND_JOB")
        await recorder.settle()


async def call_9004_originate_timeout(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        await client.send("event plain ALL")
        reply = await client.api(
            "originate {originate_timeout=1}loopback/9004/default &park", check=False
        )
        assert reply.startswith("-ERR"), reply
        await recorder.settle()


async def originate_variables(recorder: Recorder) -> None:
    """Values that FreeSWITCH's originate parser rewrites (issue 9 owns the fake's parser)."""
    uuid = _uuid()
    async with recorder.inbound() as client:
        await client.send("event plain CHANNEL_PARK BACKGROUND_JOB CHANNEL_DESTROY")
        block = (
            f"origination_uuid={uuid},fid_quoted='a,b',fid_escaped=a\\,b,"
            "fid_caret=x^y,origination_caller_id_name='Smith,John'"
        )
        await client.send(f"bgapi originate {{{block}}}loopback/9002/default &park")
        await recorder.wait_event("BACKGROUND_JOB")
        for name in (
            "fid_quoted",
            "fid_escaped",
            "fid_caret",
            "origination_caller_id_name",
        ):
            await client.api(f"uuid_getvar {uuid} {name}", check=False)
        await client.api(f"uuid_setvar {uuid} fid_set 'quoted value'", check=False)
        await client.api(f"uuid_getvar {uuid} fid_set", check=False)
        await client.api(f"uuid_kill {uuid}")
        await recorder.settle()


async def bridge(recorder: Recorder) -> None:
    """Two loopback calls bridged (uuid_bridge of their a-legs), then one hung up."""
    async with recorder.inbound() as client:
        await client.send("event plain ALL")
        first = await Channel.create(client, "loopback/9002/default")
        second = await Channel.create(client, "loopback/9007/default")
        await recorder.wait_event("CHANNEL_PARK", second.uuid)
        await client.api(f"uuid_bridge {first.uuid} {second.uuid}", check=False)
        await recorder.wait_event("CHANNEL_BRIDGE")
        await client.api(f"uuid_kill {second.uuid}")
        await recorder.settle()


async def call_no_route(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        await client.send("event plain ALL")
        await client.api("originate loopback/fidelity-no-such-extension/default &park", check=False)
        await recorder.settle()


async def call_busy_via_channel(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        await client.send("event plain ALL")
        try:
            await Channel.create(client, "loopback/9005/default")
        except OriginateError as error:
            if error.cause != "USER_BUSY":
                raise
        else:
            raise AssertionError("9005 answered")
        await recorder.settle()


async def playback(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        await client.send("event plain ALL")
        channel = await Channel.create(client, "loopback/9002/default")
        await channel.playback(TONE)
        await channel.hangup()
        await recorder.settle()


async def variables(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        await client.send("event plain CHANNEL_EXECUTE CHANNEL_PARK BACKGROUND_JOB CHANNEL_DESTROY")
        channel = await Channel.create(client, "loopback/9002/default")
        for command in (
            f"uuid_setvar {channel.uuid} fidelity_var hello",
            f"uuid_getvar {channel.uuid} fidelity_var",
            f"uuid_setvar {channel.uuid} fidelity_var",
            f"uuid_getvar {channel.uuid} fidelity_var",
            f"uuid_getvar {channel.uuid} channel_name",
            f"uuid_getvar {channel.uuid} destination_number",
            f"uuid_getvar {channel.uuid} direction",
            f"uuid_getvar {channel.uuid} is_outbound",
            f"uuid_getvar {channel.uuid} call_uuid",
            f"uuid_exists {channel.uuid}",
        ):
            await client.api(command, check=False)
        await channel.set_variable("fidelity_other", "value two")
        assert await channel.get_variable("fidelity_other") == "value two"
        await channel.hangup()
        await recorder.settle()


async def dtmf(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        await client.send("event plain ALL")
        channel = await Channel.create(client, "loopback/9007/default")
        await recorder.wait_event("CHANNEL_PARK", uuid=channel.uuid)
        await client.api(f"uuid_send_dtmf {channel.uuid} 12#")
        await recorder.wait_count("DTMF", 3, within=10)
        await channel.hangup()
        await recorder.settle()


async def hangup_cause(recorder: Recorder) -> None:
    async with recorder.inbound() as client:
        await client.send("event plain CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY")
        channel = await Channel.create(client, "loopback/9002/default")
        await channel.hangup("CALL_REJECTED")
        await recorder.settle()
        assert channel.hangup_cause == "CALL_REJECTED"


async def hangup_by_itself(recorder: Recorder) -> None:
    uuid = _uuid()
    async with recorder.inbound() as client:
        await client.send("event plain ALL")
        await _originate(client, "9010", uuid)
        await recorder.wait_event("BACKGROUND_JOB")
        await recorder.settle()


async def outbound_session(recorder: Recorder) -> None:
    done = trio.Event()

    async def handler(session: Session) -> None:
        try:
            await session.channel.answer()
            await session.getvar("destination_number")
            await session.channel.playback(TONE)
            await session.channel.hangup()
        finally:
            done.set()

    app = Outbound(handler, "127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        server_host, server_port = await nursery.start(app.serve)
        proxy_port = await recorder.proxy_to(
            "outbound", (server_host, server_port), switch_connects=True
        )
        recorder.replacements.append((str(proxy_port), "<outbound-port>"))
        async with recorder.inbound("control") as client:
            await client.send("event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_DESTROY")
            await _originate(client, "9000", _uuid(), f"outbound_port={proxy_port}")
            with trio.fail_after(20):
                await done.wait()
            await recorder.settle()
        nursery.cancel_scope.cancel()


SCENARIOS: dict[str, Scenario] = {
    scenario.__name__: scenario
    for scenario in (
        auth_ok,
        auth_wrong,
        api_stable,
        errors,
        bgapi,
        _events_in("plain"),
        _events_in("json"),
        _events_in("xml"),
        filters,
        _call("9002"),
        _call("9001"),
        _call("9002", cause="USER_BUSY"),
        call_9003_early_media,
        call_9004_killed_while_ringing,
        call_9004_originate_timeout,
        bridge,
        _call("9005", kill=False),
        call_busy_via_channel,
        call_no_route,
        playback,
        variables,
        dtmf,
        hangup_cause,
        hangup_by_itself,
        outbound_session,
    )
}

# Scenarios of the fake's parsers (originate variables, uuid_setvar values): issue 9 owns
# those parsers, so their disagreements are reported, not fixed here.
PARSER_SCENARIOS: dict[str, Scenario] = {originate_variables.__name__: originate_variables}
