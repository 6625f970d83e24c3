"""``genesis-trio demo --host`` and every example in ``examples/``, run as subprocesses
against the real switch, as a user would run them; an observer connection records what the
switch did meanwhile, and the checks read that, not only the programs' output."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from real_switch import RealSwitch, channel_exists

from ._seen import Seen

pytestmark = pytest.mark.trio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_DEADLINE = 90


def switch_flags(switch: RealSwitch) -> list[str]:
    return ["--host", switch.host, "--port", str(switch.port), "--password", switch.password]


@asynccontextmanager
async def observed(switch: RealSwitch, *names: str) -> AsyncIterator[Seen]:
    """Every event named ``names`` that the switch sends while the block runs."""
    seen = Seen()
    async with switch.inbound() as observer:
        for name in names:
            observer.on(name, seen.add)
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
