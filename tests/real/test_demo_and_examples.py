"""``genesis-trio demo --host`` and every example in ``examples/``, run as subprocesses
against the real switch, as a user would run them; an observer connection records what the
switch did meanwhile, and the checks read that, not only the programs' output."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid as uuid_module
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from genesis_trio import Event
from real_switch import RealSwitch, channel_exists

from ._seen import Seen

pytestmark = pytest.mark.trio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_DEADLINE = 90


def switch_flags(switch: RealSwitch) -> list[str]:
    return ["--host", switch.host, "--port", str(switch.port), "--password", switch.password]


@asynccontextmanager
async def observed(switch: RealSwitch, *names: str) -> AsyncIterator[Seen]:
    """Every event named ``names`` that the switch sends while the block runs (``names`` are
    the words of ``event``: ``"CUSTOM", "a::b"`` for a CUSTOM subclass)."""
    seen = Seen()
    async with switch.inbound() as observer:
        for name in names:
            observer.on(name, seen.handle)
        await observer.events(*names)
        yield seen


async def run_python(args: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(RUN_DEADLINE):
        return await trio.run_process(
            [sys.executable, *args], capture_stdout=True, capture_stderr=True, check=False, cwd=cwd
        )


def output_of(result: subprocess.CompletedProcess[bytes]) -> str:
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return out


def application_completions(seen: Seen, uuid: str) -> dict[str, str]:
    return {
        str(e.application): str(e.get("Application-Response"))
        for e in seen.events
        if e.name == "CHANNEL_EXECUTE_COMPLETE" and e.unique_id == uuid
    }


def hangup_cause(seen: Seen, uuid: str) -> str | None:
    for event in seen.events:
        if event.name == "CHANNEL_HANGUP_COMPLETE" and event.unique_id == uuid:
            return event.hangup_cause
    return None


async def test_demo_runs_its_call_flow_on_the_real_switch(freeswitch: RealSwitch) -> None:
    async with observed(freeswitch, "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP_COMPLETE") as seen:
        result = await run_python(
            ["-m", "genesis_trio.cli", "demo", *switch_flags(freeswitch)], cwd=EXAMPLES
        )
        out = output_of(result)
        match = re.search(r"answered, uuid ([0-9a-f-]{36})", out)
        assert match, out
        uuid = match.group(1)
        with trio.fail_after(RUN_DEADLINE):
            await seen.wait_for(
                lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.unique_id == uuid
            )
        async with freeswitch.inbound() as client:
            assert not await channel_exists(client, uuid)
    assert f"real FreeSWITCH at {freeswitch.host}:{freeswitch.port}" in out
    assert "api status -> UP" in out
    assert "event CHANNEL_HANGUP_COMPLETE (NORMAL_CLEARING)" in out
    assert "freeswitch.channel.answer" in out  # the trace tree, from the real events
    assert freeswitch.password not in out
    # What the switch says happened to that call.
    assert application_completions(seen, uuid)["playback"] == "FILE PLAYED"
    assert hangup_cause(seen, uuid) == "NORMAL_CLEARING"
    # Only the demo call's events are shown, not its loopback partner's.
    shown = re.findall(r"^  event (\S+)", out, re.MULTILINE)
    assert shown.count("CHANNEL_CREATE") == 1


def example(name: str) -> str:
    return str(EXAMPLES / f"{name}.py")


async def nothing_left_of(switch: RealSwitch, seen: Seen) -> None:
    """Every channel the switch created while we watched is gone (hangups finish a moment
    after a program exits: wait for them)."""
    created = {e.unique_id for e in seen.events if e.name == "CHANNEL_CREATE"}
    assert created, "the example placed no call on the switch"

    def all_destroyed(event: Event) -> bool:
        destroyed = {e.unique_id for e in seen.events if e.name == "CHANNEL_DESTROY"}
        return created <= destroyed

    with trio.fail_after(RUN_DEADLINE):
        await seen.wait_for(all_destroyed)
    async with switch.inbound() as client:
        for uuid in created:
            assert uuid is not None
            assert not await channel_exists(client, uuid)


LIFECYCLE = ("CHANNEL_CREATE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP_COMPLETE")
WATCHED = (*LIFECYCLE, "CHANNEL_BRIDGE", "CHANNEL_DESTROY")


async def test_example_inbound_basics(freeswitch: RealSwitch) -> None:
    async with observed(freeswitch, "CUSTOM", "example::hello") as seen:
        result = await run_python(
            [example("inbound_basics"), *switch_flags(freeswitch)], cwd=EXAMPLES
        )
        out = output_of(result)
        with trio.fail_after(RUN_DEADLINE):
            fired = await seen.wait_for(lambda e: e.subclass == "example::hello")
    assert "status: UP" in out
    assert "subscription got example::hello hi there" in out
    assert "handler saw example::hello hi there" in out
    # The switch fired the example's event to every listener, ours included.
    assert fired["X-Greeting"] == "hi there"


async def test_example_tracing_console(freeswitch: RealSwitch) -> None:
    async with observed(freeswitch, *WATCHED) as seen:
        result = await run_python(
            [
                example("tracing_console"),
                *switch_flags(freeswitch),
                "--dial",
                "loopback/9002/default",
            ],
            cwd=EXAMPLES,
        )
        out = output_of(result)
        match = re.search(r"^call ([0-9a-f-]{36}) to loopback/9002/default answered", out, re.M)
        assert match, out
        await nothing_left_of(freeswitch, seen)
    assert hangup_cause(seen, match.group(1)) == "NORMAL_CLEARING"
    assert "freeswitch.channel.create" in out
    assert "freeswitch.channel.hangup_complete" in out


async def test_example_consumer_app(freeswitch: RealSwitch) -> None:
    async with observed(freeswitch, *WATCHED) as seen:
        result = await run_python(
            [
                example("consumer_app"),
                *switch_flags(freeswitch),
                "--place-call",
                "loopback/9010/default",
            ],
            cwd=EXAMPLES,
        )
        out = output_of(result)
        await nothing_left_of(freeswitch, seen)
    finished = re.findall(r"^finished normally: ([0-9a-f-]{36})$", out, re.M)
    answered = re.findall(r"^answered: ([0-9a-f-]{36}) caller 1000$", out, re.M)
    assert finished, out
    assert finished[0] in answered
    assert hangup_cause(seen, finished[0]) == "NORMAL_CLEARING"


async def test_example_click2call(freeswitch: RealSwitch) -> None:
    legs = ["--agent", "loopback/9002/default", "--customer", "loopback/9002/default"]
    async with observed(freeswitch, *WATCHED) as seen:
        result = await run_python(
            [example("click2call"), *switch_flags(freeswitch), *legs, "--max-talk", "1"],
            cwd=EXAMPLES,
        )
        out = output_of(result)
        await nothing_left_of(freeswitch, seen)
    match = re.search(r"^bridged ([0-9a-f-]{36}) <-> ([0-9a-f-]{36})$", out, re.M)
    assert match, out
    agent, customer = match.groups()
    bridges = [e for e in seen.events if e.name == "CHANNEL_BRIDGE"]
    assert any(
        {e.get("Bridge-A-Unique-ID"), e.get("Bridge-B-Unique-ID")} == {agent, customer}
        for e in bridges
    ), [(e.get("Bridge-A-Unique-ID"), e.get("Bridge-B-Unique-ID")) for e in bridges]
    assert application_completions(seen, agent)["playback"] == "FILE PLAYED"
    assert hangup_cause(seen, customer) == "NORMAL_CLEARING"
    assert "the call reached its limit of 1 s" in out


async def test_example_group_call(freeswitch: RealSwitch) -> None:
    group = "loopback/9005/default,loopback/9002/default,loopback/9004/default"
    args = ["--caller", "loopback/9002/default", "--group", group, "--max-talk", "1"]
    async with observed(freeswitch, *WATCHED) as seen:
        result = await run_python(
            [example("group_call"), *switch_flags(freeswitch), *args, "--timeout", "20"],
            cwd=EXAMPLES,
        )
        out = output_of(result)
        await nothing_left_of(freeswitch, seen)
    assert "loopback/9002/default answered" in out
    match = re.search(r"^bridged ([0-9a-f-]{36}) <-> ([0-9a-f-]{36})$", out, re.M)
    assert match, out
    by_name = {
        e.get("Channel-Name"): e.hangup_cause
        for e in seen.events
        if e.name == "CHANNEL_HANGUP_COMPLETE"
    }
    assert by_name["loopback/9005-b"] == "USER_BUSY"
    # The leg still ringing when 9002 answered was hung up, not left ringing.
    assert by_name["loopback/9004-a"] in {"LOSE_RACE", "ORIGINATOR_CANCEL"}


async def test_example_call_queue(freeswitch: RealSwitch) -> None:
    async with observed(freeswitch, *WATCHED) as seen:
        result = await run_python([example("call_queue"), *switch_flags(freeswitch)], cwd=EXAMPLES)
        out = output_of(result)
        await nothing_left_of(freeswitch, seen)
    # Each caller is a real call: the a-leg the example originated carries the caller's name.
    calls = {
        e["Caller-Caller-ID-Name"]: e.unique_id
        for e in seen.events
        if e.name == "CHANNEL_CREATE" and e.get("Channel-Name") == "loopback/9002-a"
    }
    assert sorted(calls) == ["alice", "bob", "carol", "dave", "erin", "frank"]
    for name, uuid in calls.items():
        assert uuid is not None
        assert hangup_cause(seen, uuid) == "NORMAL_CLEARING", name
    assert "dave   gave up after 0.5s in line" in out
    assert "line empty: 0 waiting, 0 talking" in out


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_example_ivr_answers_a_call_the_switch_routes_to_it(freeswitch: RealSwitch) -> None:
    """The switch routes a call to the example's outbound server (``loopback/9000`` with
    ``outbound_port``); the caller, the loopback a-leg, presses 2 with ``uuid_send_dtmf``."""
    listen_port = _free_tcp_port()
    caller = str(uuid_module.uuid4())
    command = [
        sys.executable, example("ivr"), *switch_flags(freeswitch),
        "--listen-port", str(listen_port), "--tones",
    ]  # fmt: skip
    watched = (*WATCHED, "CHANNEL_EXECUTE", "DTMF")
    async with observed(freeswitch, *watched) as seen, freeswitch.inbound() as control:
        ivr = await trio.lowlevel.open_process(
            command, cwd=EXAMPLES, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            with trio.fail_after(RUN_DEADLINE):
                assert ivr.stdout is not None
                assert ivr.stderr is not None
                out = b""
                while b"[ivr] listening on" not in out:
                    chunk = await ivr.stdout.receive_some()
                    assert chunk, "the example exited before listening"
                    out += chunk
                await control.api(
                    f"originate {{origination_uuid={caller},outbound_port={listen_port}}}"
                    "loopback/9000/default &park"
                )
                menu = await seen.wait_for(
                    lambda e: e.name == "CHANNEL_EXECUTE" and e.application == "play_and_get_digits"
                )
                await control.api(f"uuid_send_dtmf {caller} 2")
                async with trio.open_nursery() as readers:

                    async def rest_of_stdout() -> None:
                        nonlocal out
                        assert ivr.stdout is not None
                        while chunk := await ivr.stdout.receive_some():
                            out += chunk

                    readers.start_soon(rest_of_stdout)
                    err = b""
                    while chunk := await ivr.stderr.receive_some():
                        err += chunk
                assert await ivr.wait() == 0, err.decode()[-3000:]
                await nothing_left_of(freeswitch, seen)
        finally:
            ivr.kill()  # ours, by its PID; a no-op once it has exited
            with trio.CancelScope(shield=True):
                await ivr.wait()
    text = out.decode()
    assert "[ivr] choice 2" in text, text
    assert "[ivr] hung up (NORMAL_CLEARING)" in text, text
    session = menu.unique_id  # the b-leg: the one the socket application connected
    assert session is not None
    assert session != caller
    assert any(
        e.name == "DTMF" and e.unique_id == session and e["DTMF-Digit"] == "2" for e in seen.events
    )
    assert application_completions(seen, session)["playback"] == "FILE PLAYED"
    assert hangup_cause(seen, caller) == "NORMAL_CLEARING"
